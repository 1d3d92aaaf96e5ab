"""The package is generated from the notebooks: exporting and cleaning again must change nothing,
and each module may import only modules of lower-numbered notebooks."""
import ast, filecmp, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

def _tree_diff(a: Path, b: Path):
    "Files that differ, or exist on one side only, between two folders."
    out = []
    cmp = filecmp.dircmp(a, b, ignore=['__pycache__', '.ipynb_checkpoints'])
    def walk(c, rel):
        out.extend(f'{rel}{n} (only in one)' for n in c.left_only + c.right_only)
        out.extend(f'{rel}{n}' for n in c.diff_files)
        for n, sub in c.subdirs.items(): walk(sub, f'{rel}{n}/')
    walk(cmp, '')
    return out

def test_export_and_clean_change_nothing(tmp_path):
    for p in ('nbs', 'course_lib'): shutil.copytree(ROOT/p, tmp_path/p, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints'))
    for p in ('pyproject.toml', 'settings.ini', 'README.md'): shutil.copy(ROOT/p, tmp_path/p)
    for cmd in ('nbdev-export', 'nbdev-clean'):
        r = subprocess.run([str(BIN/cmd)], cwd=tmp_path, capture_output=True, text=True)
        assert r.returncode == 0, f'{cmd} failed:\n{r.stdout}\n{r.stderr}'
    changed = _tree_diff(ROOT/'nbs', tmp_path/'nbs') + _tree_diff(ROOT/'course_lib', tmp_path/'course_lib')
    assert not changed, ('nbdev-export + nbdev-clean change these files; run `make export` and commit them:\n  '
                         + '\n  '.join(changed))

def _module_numbers():
    "module name -> the name of the notebook it is generated from ('00_core', '03a_optim', ...), read from the generated header; notebooks sort by name."
    nums = {}
    for py in (ROOT/'course_lib').glob('*.py'):
        m = re.search(r'File to edit: \.\./nbs/(\d+[a-z]?_\w+)\.ipynb', py.read_text()[:400])
        if m: nums[py.stem] = m.group(1)
    return nums

def test_modules_import_only_lower_numbered():
    nums = _module_numbers()
    assert 'core' in nums, 'course_lib/core.py should be generated from nbs/00_core.ipynb'
    bad = []
    for mod, n in nums.items():
        tree = ast.parse((ROOT/'course_lib'/f'{mod}.py').read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom):
                if node.level: names = [node.module or ''] if node.module else [a.name for a in node.names]
                elif (node.module or '').startswith('course_lib'): names = [node.module.split('.', 1)[1] if '.' in node.module else '']
            elif isinstance(node, ast.Import):
                names = [a.name.split('.', 1)[1] for a in node.names if a.name.startswith('course_lib.')]
            for other in names:
                other = other.split('.')[0]
                if other in nums and other != mod and nums[other] >= n:
                    bad.append(f'{mod} (notebook {n}) imports {other} (notebook {nums[other]})')
    assert not bad, '\n'.join(bad)

def _default_exp(nb: Path):
    import json
    for c in json.loads(nb.read_text())['cells']:
        m = re.search(r'^#\|\s*default_exp\s+(\S+)', ''.join(c['source']), re.M)
        if c['cell_type'] == 'code' and m: return m.group(1)
    return None

def _readme_map():
    "notebook -> module from the README's notebook map table (`—` for a notebook that exports nothing)."
    text = (ROOT/'README.md').read_text()
    m = re.search(r'^## Notebook map.*?\n(.*?)(?=^## |\Z)', text, re.S | re.M)
    assert m, 'README.md needs a "## Notebook map" section: notebook -> module -> its one job'
    rows = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) >= 3 and cells[0].startswith('`'):
            nb, mod = cells[0].strip('`'), cells[1].strip('`')
            assert nb not in rows, f'{nb} is listed twice in the README notebook map'
            assert cells[2], f'{nb}: the README notebook map should say the module\'s one job'
            rows[nb] = None if mod in ('—', '-', '') else mod
    return rows

def test_readme_notebook_map_matches_default_exp():
    nbs = {p.stem: _default_exp(p) for p in (ROOT/'nbs').glob('*.ipynb')}
    readme = _readme_map()
    missing = sorted(set(nbs) - set(readme)); extra = sorted(set(readme) - set(nbs))
    wrong = sorted(f'{n}: README says {readme[n]}, notebook exports {nbs[n]}' for n in set(nbs) & set(readme)
                   if readme[n] != nbs[n] and not (n == 'index' and readme[n] in ('__init__', 'course_lib')))
    assert not (missing or extra or wrong), (f'README notebook map out of sync. Missing: {missing}; '
                                             f'not a notebook: {extra}; wrong module: {wrong}')

def test_one_module_per_notebook():
    mods = [m for m in (_default_exp(p) for p in (ROOT/'nbs').glob('*.ipynb')) if m]
    dup = sorted({m for m in mods if mods.count(m) > 1})
    assert not dup, f'modules exported by more than one notebook: {dup}'

def test_links_to_notebooks_point_at_notebooks_that_exist():
    "References to lessons stay true as lessons land: every notebook the index or a lesson links to exists."
    import json
    bad = []
    for nb in (ROOT/'nbs').glob('*.ipynb'):
        text = '\n'.join(''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'markdown')
        for target in re.findall(r'\]\(([\w.-]+\.ipynb)(?:#[^)]*)?\)', text):
            if not (ROOT/'nbs'/target).exists(): bad.append(f'{nb.name} -> {target}')
    for target in re.findall(r'`(\d\d[a-z]?_\w+)`', (ROOT/'README.md').read_text()):
        if not (ROOT/'nbs'/f'{target}.ipynb').exists(): bad.append(f'README.md -> {target}')
    assert not bad, 'links to notebooks that do not exist:\n  ' + '\n  '.join(bad)
