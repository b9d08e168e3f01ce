"""Read one file for what Airflow 3 changed (the table of validate/airflow2.py), statically.

In Python code: imports of modules and names Airflow 3 moved or removed (and uses of them
through an imported module, ``dates.days_ago``), arguments ``DAG``, ``@dag``, operators,
sensors and ``@task`` no longer take (also as ``default_args`` keys), ``trigger_rule`` values
that are gone, removed context keys read in task code (``context["execution_date"]``,
``kwargs.get("next_ds")``, a task function's parameter), removed template variables in
strings (``"{{ execution_date }}"``) and the plugin attributes Airflow ignores. In template
files: removed template variables. Imports guarded by ``try``/``except ImportError`` are
compatibility code and are left alone.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from dagship.validate import airflow2

_TASK_DECORATORS = ("airflow.decorators.task", "airflow.sdk.task")
_DAG_CLASSES = ("DAG", "dag")
_CONTEXT_FUNCTIONS = ("get_current_context",)
_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})
_JINJA = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.DOTALL)
_KEYS = "|".join(sorted(airflow2.CONTEXT_KEYS, key=len, reverse=True))
# A removed variable in a template; `x.execution_date` too (DagRun and TaskInstance lost it).
_TEMPLATE_KEY = re.compile(rf"(?<![\w.])(?:{_KEYS})\b|(?<=\.)execution_date\b")


@dataclass(frozen=True)
class Finding:
    path: str  # relative to the project
    line: int
    kind: str  # import | name | argument | context | template | plugin | syntax
    found: str  # what the code says: a dotted name, `schedule_interval=`, a context key
    replacement: str | None
    required: bool  # True: fails on Airflow 3; False: deprecated, still works
    message: str


def scan_template(text: str, path: str) -> list[Finding]:
    """Removed template variables in a template file (SQL, shell, Jinja)."""
    return _template_findings(text, path, 1)


def scan_python(text: str, path: str) -> list[Finding]:
    """Everything Airflow 3 changed that the Python source ``text`` uses."""
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        message = f"cannot read {path}: {exc.msg} (line {exc.lineno}); fix it and check again"
        return [Finding(path, exc.lineno or 1, "syntax", "", None, True, message)]
    scanner = _Scanner(path, tree)
    scanner.visit(tree)
    unique = {(f.line, f.kind, f.found): f for f in scanner.findings}
    return list(unique.values())


def _template_findings(text: str, path: str, first_line: int) -> list[Finding]:
    findings = []
    for block in _JINJA.finditer(text):
        for match in _TEMPLATE_KEY.finditer(block.group(0)):
            key = match.group(0)
            line = first_line + text.count("\n", 0, block.start() + match.start())
            new = airflow2.CONTEXT_KEYS[key]
            message = airflow2.describe_context_key(key, template=True)
            findings.append(Finding(path, line, "template", key, new, True, message))
    return findings


class _Scanner(ast.NodeVisitor):
    """One file's findings: imports first (they also name what the code refers to), then
    the calls, functions, classes and strings that use what changed."""

    def __init__(self, path: str, tree: ast.Module) -> None:
        self.path = path
        self.findings: list[Finding] = []
        self.names: dict[str, str] = {}  # local name -> dotted name it was imported as
        self.dicts = _module_dicts(tree)  # module-level `name = {...}`, for default_args
        self.callables = _callables(tree)  # functions passed as python_callable or callbacks
        self.context_names: list[frozenset[str]] = [frozenset({"context"})]
        self._imports(tree)

    def add(
        self, node: ast.AST, kind: str, found: str, new: str | None, required: bool, message: str
    ) -> None:
        line = getattr(node, "lineno", 1)
        self.findings.append(Finding(self.path, line, kind, found, new, required, message))

    # ---------------------------------------------------------------- imports and names

    def _imports(self, tree: ast.Module) -> None:
        guarded = _guarded_imports(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.names[alias.asname or alias.name.split(".")[0]] = (
                        alias.name if alias.asname else alias.name.split(".")[0]
                    )
                    if id(node) not in guarded:
                        self._check_name(node, "import", alias.name)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    dotted = node.module if alias.name == "*" else f"{node.module}.{alias.name}"
                    self.names[alias.asname or alias.name] = dotted
                    if id(node) not in guarded:
                        self._check_name(node, "import", dotted)

    def _check_name(self, node: ast.AST, kind: str, dotted: str) -> bool:
        change = airflow2.find(dotted)
        if change is None:
            return False
        message = airflow2.describe(dotted, change)
        self.add(node, kind, dotted, change.replacement(dotted), change.required, message)
        return True

    def dotted(self, node: ast.expr) -> str | None:
        """The dotted name an expression refers to, through the imports (``dates.days_ago``
        is ``airflow.utils.dates.days_ago``); the name as written when it was not imported."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        return ".".join([self.names.get(node.id, node.id), *reversed(parts)])

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = self.dotted(node)
        root = node
        while isinstance(root, ast.Attribute):
            root = root.value  # type: ignore[assignment]
        if dotted and isinstance(root, ast.Name) and root.id in self.names:
            change = airflow2.find(dotted)
            imported = self.names[root.id]
            # A change that covers the imported name itself was reported on the import.
            if change is not None and not (imported + ".").startswith(change.old + "."):
                self._check_name(node, "name", dotted)
        self.visit(root)

    # ---------------------------------------------------------------- calls

    def visit_Call(self, node: ast.Call) -> None:
        callee = self.dotted(node.func) or ""
        short = callee.rsplit(".", 1)[-1]
        if short in _DAG_CLASSES and (callee.startswith("airflow.") or callee == "DAG"):
            self._check_arguments(node, airflow2.DAG_ARGUMENTS, short)
        elif short == "DagBag" and (callee.startswith("airflow.") or callee == short):
            self._check_arguments(node, airflow2.DAGBAG_ARGUMENTS, short)
        elif self._is_task(node, callee, short):
            arguments = {**airflow2.OPERATOR_ARGUMENTS}
            arguments.update(airflow2.OPERATOR_SPECIFIC_ARGUMENTS.get(short, {}))
            self._check_arguments(node, arguments, short)
            self._check_trigger_rule(node.keywords)
        self._check_context_get(node)
        self.generic_visit(node)

    def _is_task(self, node: ast.Call, callee: str, short: str) -> bool:
        if any(keyword.arg == "task_id" for keyword in node.keywords):
            return True
        if _is_task_decorator(callee):
            return True
        return callee.startswith("airflow.") and short.endswith(("Operator", "Sensor"))

    def _check_arguments(
        self, node: ast.Call, removed: dict[str, airflow2.RemovedArgument], owner: str
    ) -> None:
        for keyword in node.keywords:
            argument = removed.get(keyword.arg or "")
            if argument is not None:
                message = airflow2.describe_argument(argument, owner)
                found = f"{argument.name}="
                new = f"{argument.new}=" if argument.new else None
                self.add(keyword, "argument", found, new, argument.required, message)
            if keyword.arg == "default_args":
                self._check_default_args(keyword.value)

    def _check_default_args(self, value: ast.expr) -> None:
        if isinstance(value, ast.Name):
            value = self.dicts.get(value.id, value)
        if not isinstance(value, ast.Dict):
            return
        keywords = []
        for key, item in zip(value.keys, value.values, strict=True):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                keywords.append(ast.keyword(arg=key.value, value=item, lineno=key.lineno))
        call = ast.Call(func=ast.Name(id="default_args"), args=[], keywords=keywords)
        self._check_arguments(call, airflow2.OPERATOR_ARGUMENTS, "default_args")
        self._check_trigger_rule(keywords)

    def _check_trigger_rule(self, keywords: list[ast.keyword]) -> None:
        for keyword in keywords:
            value = keyword.value
            if keyword.arg != "trigger_rule" or not isinstance(value, ast.Constant):
                continue
            rule = str(value.value)
            new = airflow2.TRIGGER_RULES.get(rule)
            if new is not None:
                message = f'trigger_rule "{rule}" was removed in Airflow 3: use "{new}"'
                self.add(value, "argument", f'trigger_rule="{rule}"', f'"{new}"', True, message)

    # ---------------------------------------------------------------- task context

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        names = {"context"}
        if self._is_task_function(node):
            names.update(_context_assignments(node, self))
            if node.args.kwarg is not None:
                names.add(node.args.kwarg.arg)
            for argument in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
                if argument.arg in airflow2.CONTEXT_KEYS:
                    self._context_key(argument, argument.arg)
        self.context_names.append(frozenset(names))
        self.generic_visit(node)
        self.context_names.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def _is_task_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        if node.name in self.callables or node.name in ("execute", "pre_execute", "post_execute"):
            return True
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if _is_task_decorator(self.dotted(target) or ""):
                return True
        return False

    def visit_Subscript(self, node: ast.Subscript) -> None:
        key = node.slice
        if (
            isinstance(node.value, ast.Name)
            and node.value.id in self.context_names[-1]
            and isinstance(key, ast.Constant)
            and key.value in airflow2.CONTEXT_KEYS
        ):
            self._context_key(key, str(key.value))
        self.generic_visit(node)

    def _check_context_get(self, node: ast.Call) -> None:
        func = node.func
        if not (
            isinstance(func, ast.Attribute)
            and func.attr == "get"
            and isinstance(func.value, ast.Name)
            and func.value.id in self.context_names[-1]
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            return
        key = node.args[0].value
        if key in airflow2.CONTEXT_KEYS:
            self._context_key(node.args[0], str(key))

    def _context_key(self, node: ast.AST, key: str) -> None:
        new = airflow2.CONTEXT_KEYS[key]
        self.add(node, "context", key, new, True, airflow2.describe_context_key(key))

    # ---------------------------------------------------------------- templates, plugins

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and ("{{" in node.value or "{%" in node.value):
            self.findings.extend(_template_findings(node.value, self.path, node.lineno))

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if any((self.dotted(base) or "").endswith("AirflowPlugin") for base in node.bases):
            for statement in node.body:
                targets = statement.targets if isinstance(statement, ast.Assign) else []
                for target in targets:
                    if isinstance(target, ast.Name) and target.id in airflow2.PLUGIN_ATTRIBUTES:
                        message = (
                            f"`{target.id}` of an AirflowPlugin is ignored by Airflow 3: "
                            "import them as regular Python modules"
                        )
                        self.add(target, "plugin", target.id, None, False, message)
        self.generic_visit(node)


def _is_task_decorator(dotted: str) -> bool:
    """``@task``, ``@task(...)``, ``@task.python``, ``@task.bash`` ... (not ``@task_group``)."""
    return any(dotted == d or dotted.startswith(d + ".") for d in _TASK_DECORATORS)


def _guarded_imports(tree: ast.Module) -> set[int]:
    """The imports inside a ``try`` that catches ImportError: compatibility code."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try | ast.TryStar) and _catches_import_error(node):
            for child in [*node.body, *(s for h in node.handlers for s in h.body)]:
                guarded.update(
                    id(n) for n in ast.walk(child) if isinstance(n, ast.Import | ast.ImportFrom)
                )
    return guarded


def _catches_import_error(node: ast.Try | ast.TryStar) -> bool:
    for handler in node.handlers:
        if handler.type is None:
            return True
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(t, ast.Name) and t.id in _IMPORT_ERRORS for t in types):
            return True
    return False


def _module_dicts(tree: ast.Module) -> dict[str, ast.expr]:
    found: dict[str, ast.expr] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Dict):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = statement.value
    return found


def _callables(tree: ast.Module) -> set[str]:
    """Names of functions Airflow calls with the task context: ``python_callable=f``,
    ``on_failure_callback=f`` and the like."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and isinstance(node.value, ast.Name):
            arg = node.arg or ""
            if arg == "python_callable" or (arg.startswith("on_") and arg.endswith("_callback")):
                found.add(node.value.id)
    return found


def _context_assignments(
    node: ast.FunctionDef | ast.AsyncFunctionDef, scanner: _Scanner
) -> set[str]:
    """Names assigned the task context in the function: ``context = get_current_context()``."""
    found: set[str] = set()
    for statement in ast.walk(node):
        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Call):
            callee = scanner.dotted(statement.value.func) or ""
            if callee.endswith(_CONTEXT_FUNCTIONS):
                found.update(t.id for t in statement.targets if isinstance(t, ast.Name))
    return found
