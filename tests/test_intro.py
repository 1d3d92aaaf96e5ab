"Lesson 01 (the whole game): its lesson map stays in step with the notebooks, and its module holds only its exercise checkers."
import json, re
from pathlib import Path
import course_lib.intro
from course_lib.exercises import exercises_of

NBS = Path(__file__).resolve().parent.parent/'nbs'
PLANNED = set()        # lessons of the course design that are not written yet, if linked already


def _markdown(name):
    cells = json.loads((NBS/f'{name}.ipynb').read_text())['cells']
    return '\n'.join(''.join(c['source']) for c in cells if c['cell_type'] == 'markdown')


def test_the_lesson_map_links_every_lesson_and_only_real_notebooks():
    linked = set(re.findall(r'\]\(([0-9][0-9a-z_]*)\.ipynb\)', _markdown('01_intro')))
    have = {p.stem for p in NBS.glob('[0-9]*.ipynb')}
    lessons = {n for n in have if not n.startswith('00')} - {'01_intro'}      # the engine (00*) is optional reading
    assert lessons <= linked, f'add these lessons to the map in 01_intro: {sorted(lessons - linked)}'
    assert linked - have <= PLANNED, f'links to notebooks that do not exist: {sorted(linked - have - PLANNED)}'


def test_the_solutions_link_points_to_the_solutions_file():
    assert '](../solutions/01_intro.py)' in _markdown('01_intro')
    assert (NBS.parent/'solutions'/'01_intro.py').is_file()


def test_the_module_exports_only_exercise_checkers():
    assert course_lib.intro.__all__ == []
    assert exercises_of('01') == ['01.confusion_matrix', '01.majority_baseline', '01.most_confused']
