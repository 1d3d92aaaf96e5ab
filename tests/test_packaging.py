"""pyproject.toml declares every package that course_lib imports, and requires-python matches the code."""
import ast, re, sys, tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def _norm(name: str) -> str: return re.sub(r'[-_.]+', '-', name).lower()

def _declared() -> set:
    deps = tomllib.loads((ROOT/'pyproject.toml').read_text())['project']['dependencies']
    return {_norm(re.split(r'[<>=!~;\[ ]', d, maxsplit=1)[0]) for d in deps}

def _imports():
    "Top-level names imported anywhere in course_lib (module level or inside functions), with the file."
    for py in sorted((ROOT/'course_lib').glob('*.py')):
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.Import):
                for a in node.names: yield a.name.split('.')[0], py.name
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                yield node.module.split('.')[0], py.name

def test_every_import_is_declared_or_stdlib():
    dists = metadata.packages_distributions()
    declared, missing = _declared(), []
    for name, where in _imports():
        if name in sys.stdlib_module_names or name in ('course_lib', '__future__'): continue
        provided_by = {_norm(d) for d in dists.get(name, [])}
        if not provided_by & declared: missing.append(f'{name} (in {where}; provided by {sorted(provided_by) or "nothing installed"})')
    assert not missing, 'imports with no declared dependency in pyproject.toml:\n  ' + '\n  '.join(sorted(set(missing)))

def test_declared_dependencies_are_installed():
    for d in _declared(): metadata.version(d)

def test_requires_python_matches_the_code():
    spec = tomllib.loads((ROOT/'pyproject.toml').read_text())['project']['requires-python']
    low = tuple(int(x) for x in re.search(r'>=\s*(\d+\.\d+)', spec).group(1).split('.'))
    # the syntax must parse at the floor, and standard-library calls newer than the floor must not be used
    newer = {'file_digest': (3, 11), 'tomllib': (3, 11), 'ExceptionGroup': (3, 11), 'TaskGroup': (3, 11),
             'batched': (3, 12), 'override': (3, 12)}
    for py in (ROOT/'course_lib').glob('*.py'):
        text = py.read_text()
        ast.parse(text, feature_version=low)
        for name, since in newer.items():
            if re.search(rf'\b{name}\b', text): assert low >= since, f'{py.name} uses {name} (Python {since}), but requires-python is {spec}'
    assert sys.version_info[:2] >= low
