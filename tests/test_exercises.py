"""Every exercise is checked both ways: its reference answer (in `solutions/`) passes, a plausible wrong answer fails;
every lesson ends with exercises whose answers are not in the lesson."""
import json, re
from pathlib import Path
import pytest
from course_lib.exercises import load_solutions, check, exercises_of

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT/'solutions').glob('[0-9]*.py'))
# the learner's path: numbered lesson notebooks (engine notebooks are 00*)
LESSONS = sorted(p for p in (ROOT/'nbs').glob('[0-9]*.ipynb') if not p.name.startswith('00'))

def _code(nb: Path) -> str:
    return '\n'.join(''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code')

def _checks_called(nb: Path) -> set:
    return set(re.findall(r"""\bcheck\(\s*['"]([^'"]+)['"]""", _code(nb)))

@pytest.mark.parametrize('path', SOLUTIONS, ids=lambda p: p.stem)
def test_reference_passes_and_wrong_answer_fails(path):
    sol = load_solutions(path)
    lesson = path.stem.split('_')[0]
    names = exercises_of(lesson)
    assert names, f'{sol.MODULE} registers no exercise of lesson {lesson}'
    assert set(sol.SOLUTIONS) == set(names), f'{path.name}: SOLUTIONS should cover exactly {names}'
    assert set(sol.WRONG) == set(names), f'{path.name}: WRONG should cover exactly {names}'
    for n in names:
        assert check(n, sol.SOLUTIONS[n], quiet=True), f'the reference answer of {n} does not pass its check'
        assert not check(n, sol.WRONG[n], quiet=True), f'the wrong answer of {n} passes its check: the check cannot fail'

def _family(stem: str) -> str: return re.match(r'\d+', stem).group(0)

@pytest.mark.parametrize('family', sorted({_family(p.stem) for p in LESSONS}))
def test_every_lesson_ends_with_checked_exercises(family):
    nbs = [p for p in LESSONS if _family(p.stem) == family]
    called = set().union(*(_checks_called(p) for p in nbs))
    assert len(called) >= 2, f'lesson {family} ({", ".join(p.name for p in nbs)}) should have 2-4 self-checked exercises, has {sorted(called)}'

@pytest.mark.parametrize('nb', LESSONS, ids=lambda p: p.stem)
def test_every_checked_exercise_has_its_solution_outside_the_lesson(nb):
    called = _checks_called(nb)
    if not called: pytest.skip('no exercise in this notebook')
    lesson = nb.stem.split('_')[0]
    sol_file = ROOT/'solutions'/f'{nb.stem}.py'
    assert sol_file.exists(), f'{nb.name} has exercises {sorted(called)} but no solutions/{nb.stem}.py'
    sol = load_solutions(sol_file)
    assert called <= set(sol.SOLUTIONS), f'{nb.name} checks {sorted(called - set(sol.SOLUTIONS))} with no reference answer'
    assert all(n.split('.', 1)[0] == lesson for n in called), f'{nb.name}: exercise names start with {lesson}.'
    assert f'solutions/{nb.stem}.py' in nb.read_text(), f'{nb.name} should link ../solutions/{nb.stem}.py'
