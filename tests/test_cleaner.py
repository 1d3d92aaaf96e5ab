"The data cleaner: decisions, journal, preview/apply/undo, path safety (course_lib.cleaning), and the widget driven headlessly (course_lib.cleaner_widget)."
import hashlib, json, math, os
from pathlib import Path, PurePosixPath

import pytest
import torch
from PIL import Image

from course_lib.cleaning import KEEP, DELETE, TRASH, JOURNAL, CleaningError, OutsideRootError, CleaningSession, Journal
from course_lib.cleaner_widget import DataCleaner

def make_images(root, names, size=8):
    "Write a small PNG with unique pixels at each relative path in `names`; returns the root."
    root = Path(root)
    for i, rel in enumerate(names):
        p = root/rel; p.parent.mkdir(parents=True, exist_ok=True)
        Image.new('RGB', (size, size), ((37*i) % 256, (i//7) % 256, (i*i) % 256)).save(p)
        with open(p, 'ab') as f: f.write(f'#{i}'.encode())   # unique bytes even when colours repeat
    return root

def snapshot(root) -> dict:
    "{content hash: relative path} of every file under root except the journal; fails on duplicates."
    out = {}
    for p in sorted(Path(root).rglob('*')):
        if p.is_file() and '.cleaning' not in p.relative_to(root).parts:
            h = hashlib.sha256(p.read_bytes()).hexdigest()
            assert h not in out, f'{p} duplicates {out[h]}'
            out[h] = p.relative_to(root).as_posix()
    return out

NAMES = [f'{s}/{c}/{c}{i}.png' for s in ('train', 'valid') for c in ('cat', 'dog', 'fox') for i in range(3)]

@pytest.fixture
def root(tmp_path): return make_images(tmp_path/'pets', NAMES)

def test_decisions_are_journalled_at_once(root):
    s = CleaningSession(root)
    s.relabel('train/cat/cat0.png', 'dog')
    lines = (root/JOURNAL).read_text().splitlines()   # on disk already, not only in memory
    assert json.loads(lines[-1])['op'] == 'decide' and json.loads(lines[-1])['decision'] == 'dog'
    s.delete(root/'valid/fox/fox1.png')                # absolute paths are accepted too
    assert s.pending == {'train/cat/cat0.png': 'dog', 'valid/fox/fox1.png': DELETE} and s.n_pending == 2
    s.keep('train/cat/cat0.png'); assert s.n_pending == 1
    s.relabel('valid/fox/fox1.png', 'fox')             # relabel to its own class is keep
    assert s.n_pending == 0 and s.decision('valid/fox/fox1.png') == KEEP
    s.delete('train/dog/dog2.png')
    assert CleaningSession(root).pending == {'train/dog/dog2.png': DELETE}   # a new kernel sees the decisions

def test_preview_moves_nothing_apply_moves_and_trashes(root):
    before = snapshot(root)
    calls = []
    s = CleaningSession(root, on_apply=lambda: calls.append(1))
    s.relabel('train/cat/cat0.png', 'dog'); s.delete('valid/fox/fox1.png')
    plan = s.preview()
    assert [(m.src, m.dst, m.kind) for m in plan] == [('train/cat/cat0.png', 'train/dog/cat0.png', 'relabel'),
                                                       ('valid/fox/fox1.png', f'{TRASH}/valid/fox/fox1.png', 'delete')]
    assert snapshot(root) == before and calls == []
    assert s.apply() == plan and calls == [1] and s.n_pending == 0
    after = snapshot(root)
    assert set(after) == set(before)                                 # nothing lost, nothing duplicated
    moved = {before[h]: after[h] for h in before if before[h] != after[h]}
    assert moved == {'train/cat/cat0.png': 'train/dog/cat0.png', 'valid/fox/fox1.png': '.trash/valid/fox/fox1.png'}
    assert s.apply() == [] and calls == [1]                          # nothing pending: no moves, no rebuild
    ops = [json.loads(l)['op'] for l in (root/JOURNAL).read_text().splitlines()]
    assert ops == ['decide', 'decide', 'plan', 'intent', 'done', 'intent', 'done', 'end']

def test_relabel_never_overwrites(root):
    before = snapshot(root)
    (root/'train/dog/cat0.png').write_bytes((root/'train/dog/dog0.png').read_bytes() + b'x')   # name taken in dog
    before = snapshot(root)
    s = CleaningSession(root)
    s.relabel('train/cat/cat0.png', 'dog'); s.relabel('valid/cat/cat0.png', 'dog')
    dsts = [m.dst for m in s.apply()]
    assert dsts == ['train/dog/cat0_1.png', 'valid/dog/cat0.png']
    assert set(snapshot(root)) == set(before)

def test_undo_goes_back_batch_by_batch(root):
    s = CleaningSession(root)
    first = snapshot(root)
    s.relabel('train/cat/cat0.png', 'fox'); s.apply()
    second = snapshot(root)
    s.delete('train/fox/cat0.png'); s.relabel('valid/dog/dog1.png', 'cat'); s.apply()
    assert snapshot(root) != second
    assert [m.kind for m in s.undo()] == ['undo', 'undo'] and snapshot(root) == second
    s.undo(); assert snapshot(root) == first
    assert s.undo() == [] and snapshot(root) == first                 # nothing left to undo
    assert CleaningSession(root).verify() == []

def test_paths_outside_the_root_are_refused(root, tmp_path):
    outside = make_images(tmp_path/'elsewhere', ['a/x.png'])
    s = CleaningSession(root)
    with pytest.raises(OutsideRootError, match='outside the dataset root'): s.delete('../elsewhere/a/x.png')
    with pytest.raises(OutsideRootError): s.delete(outside/'a/x.png')
    with pytest.raises(OutsideRootError): s.delete('train/cat/../../../elsewhere/a/x.png')
    (root/'train/cat/link.png').symlink_to(outside/'a/x.png')
    with pytest.raises(OutsideRootError): s.delete('train/cat/link.png')
    (root/'train/evil').symlink_to(outside/'a', target_is_directory=True)
    with pytest.raises(OutsideRootError): s.relabel('train/evil/x.png', 'cat')
    assert s.n_pending == 0 and (outside/'a/x.png').exists()

@pytest.mark.parametrize('label', ['../cat', 'a/b', '', '.trash', '<delete me>', 'c\\d'])
def test_bad_class_names_are_refused(root, label):
    with pytest.raises(CleaningError, match='not a usable class name'): CleaningSession(root).relabel('train/cat/cat0.png', label)

def test_clear_errors(root, tmp_path):
    with pytest.raises(CleaningError, match='not a folder'): CleaningSession(tmp_path/'nope')
    s = CleaningSession(root)
    with pytest.raises(CleaningError, match='not a file'): s.delete('train/cat/missing.png')
    with pytest.raises(CleaningError, match='class folder'): s.delete('README.txt')
    s.delete('train/cat/cat1.png'); s.apply()
    with pytest.raises(CleaningError, match='undo'): s.relabel(f'{TRASH}/train/cat/cat1.png', 'dog')
    s.delete('train/cat/cat2.png')
    os.rename(root/'train/cat/cat2.png', tmp_path/'stolen.png')     # someone moves it behind our back
    with pytest.raises(CleaningError, match='gone'): s.apply()

def test_torn_last_record_is_dropped(root):
    s = CleaningSession(root); s.delete('train/cat/cat0.png')
    with open(root/JOURNAL, 'a') as f: f.write('{"op": "decide", "path": "train/')   # crash mid-write
    s2 = CleaningSession(root)
    assert s2.pending == {'train/cat/cat0.png': DELETE}
    assert (root/JOURNAL).read_text().endswith('\n')
    s2.delete('train/dog/dog0.png'); assert CleaningSession(root).n_pending == 2
    with open(root/JOURNAL, 'a') as f: f.write('garbage\n{"op": "end"}\n')
    with pytest.raises(CleaningError, match='not valid JSON'): CleaningSession(root)

# ---- the widget, driven without a browser: setting .value fires observers, .click() runs handlers ----------------
def items_for(root):
    "(path, loss, prediction) for every image; the loss grows with the last letter of the name."
    return [(p, sum(map(ord, p.stem)) / 100, 'dog') for p in sorted(Path(root).glob('*/*/*.png'))]

def test_widget_shows_highest_losses_per_split_and_class(root):
    w = DataCleaner(CleaningSession(root), items_for(root), n_show=2)
    assert (w.split_dd.options, w.class_dd.options) == (('train', 'valid'), ('cat', 'dog', 'fox'))
    assert w.shown() == ['train/cat/cat2.png', 'train/cat/cat1.png'] and len(w.cards.children) == 2
    w.class_dd.value = 'fox'; w.split_dd.value = 'valid'
    assert w.shown() == ['valid/fox/fox2.png', 'valid/fox/fox1.png']
    dd = w.cards.children[0].children[-1]
    assert dd.options == (KEEP, DELETE, 'cat', 'dog') and dd.value == KEEP
    assert 'fox2.png' in w.cards.children[0].children[1].value

def test_widget_decide_preview_apply_undo(root):
    s = CleaningSession(root)
    w = DataCleaner(s, items_for(root), n_show=3)
    before = snapshot(root)
    cards = w.cards.children
    cards[0].children[-1].value = 'dog'          # train/cat/cat2.png -> dog
    cards[1].children[-1].value = DELETE         # train/cat/cat1.png -> trash
    assert s.pending == {'train/cat/cat2.png': 'dog', 'train/cat/cat1.png': DELETE}
    assert '<b>2</b> pending changes' in w.counter.value
    w.class_dd.value = 'dog'; w.class_dd.value = 'cat'       # decisions survive redrawing
    assert [c.children[-1].value for c in w.cards.children] == ['dog', DELETE, KEEP]
    w.preview_btn.click()
    assert 'train/cat/cat2.png  -&gt;  train/dog/cat2.png' in w.plan.value and snapshot(root) == before
    w.apply_btn.click()
    assert (root/'train/dog/cat2.png').exists() and (root/TRASH/'train/cat/cat1.png').exists()
    assert 'Applied: moved 2 files' in w.status.value and '<b>0</b> pending' in w.counter.value
    assert w.shown() == ['train/cat/cat0.png']                      # the moved ones left the cat view...
    w.class_dd.value = 'dog'
    assert 'train/dog/cat2.png' in w.shown()                        # ...and the relabelled one shows under dog
    w.undo_btn.click()
    assert snapshot(root) == before and 'Undone: moved back 2 files' in w.status.value
    w.class_dd.value = 'cat'
    assert w.shown() == ['train/cat/cat2.png', 'train/cat/cat1.png', 'train/cat/cat0.png']
    w.undo_btn.click(); assert 'Nothing to undo' in w.status.value
    w.apply_btn.click(); assert 'Nothing to apply' in w.status.value

def test_widget_shows_errors_instead_of_raising(root, tmp_path):
    s = CleaningSession(root)
    w = DataCleaner(s, items_for(root))
    w.cards.children[0].children[-1].value = DELETE
    os.rename(root/'train/cat/cat2.png', tmp_path/'elsewhere.png')
    w.preview_btn.click(); assert 'gone' in w.status.value
    w.apply_btn.click(); assert 'CleaningError' in w.status.value and 'gone' in w.status.value

def test_widget_with_non_ascii_names(tmp_path):
    root = make_images(tmp_path/'données', ['train/chat/été.png', 'train/犬/写真.png', 'train/chat/🐱.png'])
    s = CleaningSession(root)
    w = DataCleaner(s, items_for(root))
    assert w.class_dd.options == ('chat', '犬')
    top = w.shown()[0]
    w.cards.children[0].children[-1].value = '犬'
    assert s.pending == {top: '犬'}
    w.apply_btn.click()
    assert not (root/top).exists() and (root/'train/犬'/Path(top).name).exists()
    assert len(list((root/'train').rglob('*.png'))) == 3
    w.undo_btn.click(); assert (root/top).exists()

def test_relative_paths_from_the_working_folder(root, monkeypatch):
    monkeypatch.chdir(root.parent)                 # paths globbed from a relative root, as in a notebook
    s = CleaningSession('pets')
    s.delete('pets/train/cat/cat0.png'); s.relabel(Path('pets')/'valid/dog/dog0.png', 'cat')
    assert s.pending == {'train/cat/cat0.png': DELETE, 'valid/dog/dog0.png': 'cat'}
    s.keep('train/cat/cat0.png')                   # relative to the root itself
    assert s.n_pending == 1

# ---- destinations stay inside the root, too (symbolic links followed) -------------------------------------------
def outside_dir(tmp_path):
    d = tmp_path/'elsewhere'; d.mkdir(exist_ok=True); return d

def files_under(folder) -> list[str]: return sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob('*'))

def refused_and_nothing_moved(s, root, outside, link):
    "preview and apply both refuse, name the link, move nothing and keep the decisions; nothing lands outside."
    before, pending = snapshot(root), s.pending
    for call in (s.preview, s.apply):
        with pytest.raises(OutsideRootError, match=f'outside the dataset root.*{link} is a symbolic link'): call()
    assert snapshot(root) == before and s.pending == pending and files_under(outside) == []
    assert [r['op'] for r in s.journal.records if r['op'] != 'decide'] == []     # not even planned

def test_relabel_into_a_symlinked_class_folder_is_refused(root, tmp_path):
    outside = outside_dir(tmp_path)
    (root/'train/wolf').symlink_to(outside, target_is_directory=True)           # a "class" that lives elsewhere
    s = CleaningSession(root)
    s.relabel('train/cat/cat0.png', 'wolf')
    refused_and_nothing_moved(s, root, outside, 'train/wolf')
    (root/'train/wolf').unlink(); s.apply()                                       # a real folder: fine
    assert (root/'train/wolf/cat0.png').is_file() and not (root/'train/wolf').is_symlink()

def test_delete_into_a_symlinked_trash_is_refused(root, tmp_path):
    outside = outside_dir(tmp_path)
    (root/TRASH).symlink_to(outside, target_is_directory=True)
    s = CleaningSession(root)
    s.delete('train/cat/cat0.png'); s.delete('valid/dog/dog1.png')
    refused_and_nothing_moved(s, root, outside, TRASH)

def test_a_symlinked_parent_of_the_destination_is_refused(root, tmp_path):
    outside = outside_dir(tmp_path)
    (root/TRASH).mkdir(); (root/TRASH/'train').symlink_to(outside, target_is_directory=True)   # .trash/train -> out
    s = CleaningSession(root)
    s.delete('train/cat/cat0.png')                     # would go to .trash/train/cat/cat0.png, i.e. out/cat/cat0.png
    refused_and_nothing_moved(s, root, outside, f'{TRASH}/train')

def test_a_link_made_during_apply_is_caught_before_the_move(root, tmp_path, monkeypatch):
    import course_lib.cleaning as cl
    outside = outside_dir(tmp_path)
    s = CleaningSession(root)
    s.relabel('train/cat/cat0.png', 'dog'); s.relabel('train/cat/cat1.png', 'wolf')
    real, n = cl._move, []
    def move_then_link(src, dst):                       # after the first move, someone swaps in a link
        real(src, dst); n.append(1)
        if len(n) == 1: (root/'train/wolf').symlink_to(outside, target_is_directory=True)
    monkeypatch.setattr(cl, '_move', move_then_link)
    with pytest.raises(OutsideRootError, match='Stopped before moving train/cat/cat1.png.*train/wolf is a symbolic link'): s.apply()
    assert len(n) == 1 and (root/'train/cat/cat1.png').is_file() and files_under(outside) == []
    (root/'train/wolf').unlink()
    monkeypatch.setattr(cl, '_move', real)
    assert [m.dst for m in s.apply()] == ['train/wolf/cat1.png'] and s.verify() == []

# ---- names that fit the file system; a batch that cannot run can be abandoned --------------------------------------
LONG = 'x' * 251 + '.png'                               # 255 bytes: the longest name most file systems accept

def test_planned_names_fit_the_file_system(tmp_path):
    root = make_images(tmp_path/'pets', [f'train/cat/{LONG}', f'train/dog/{LONG}', 'train/dog/ok.png'])
    before = snapshot(root)
    s = CleaningSession(root)
    s.relabel(f'train/cat/{LONG}', 'dog')
    (dst,) = [m.dst for m in s.preview()]
    name = PurePosixPath(dst).name
    assert len(name.encode()) <= 255 and name.endswith('_1.png') and dst != f'train/dog/{LONG}'
    assert [m.dst for m in s.apply()] == [dst] and s.verify() == []
    s.undo(); assert snapshot(root) == before

def test_a_batch_that_cannot_run_is_abandoned_with_one_call(root):
    before = snapshot(root)
    s = CleaningSession(root)
    # a plan the disk refuses (as an older version wrote it: a name past the length limit), then its first move works
    s.journal.write('plan', batch=1, kind='apply', undoes=None,
                    moves=[['train/cat/cat0.png', 'train/dog/cat0.png', 'relabel'],
                           ['train/cat/cat1.png', f'train/dog/{LONG[:-4]}_1.png', 'relabel'],
                           ['train/fox/fox2.png', '.trash/train/fox/fox2.png', 'delete']])
    for call in (s.apply, s.resume, s.undo, CleaningSession(root).apply):       # every call replays it and fails
        with pytest.raises(CleaningError, match='abandon'): call()
    assert (root/'train/dog/cat0.png').exists() and (root/'train/cat/cat1.png').exists()
    assert 'abandon()' in s.verify()[0]
    dropped = s.abandon()
    assert [m.src for m in dropped] == ['train/cat/cat1.png', 'train/fox/fox2.png']
    moved = snapshot(root)
    assert set(moved) == set(before) and sum(moved[h] != before[h] for h in before) == 1   # files stay where they are
    assert s.verify() == [] and s.history()[-1]['abandoned'] and s.n_pending == 0
    assert s.apply() == [] and s.resume() == []                                  # the session works again
    s.relabel('train/fox/fox0.png', 'cat'); assert len(s.apply()) == 1
    s.undo(); s.undo()                                                           # the abandoned batch undoes as far as it went
    assert snapshot(root) == before and s.undo() == [] and CleaningSession(root).verify() == []
    assert s.abandon() == []                                                     # nothing to abandon: harmless

# ---- the widget after Apply and Undo shows the files where they are, with their current label ---------------------
def probs_for(root):
    "Files, and model probabilities that make every cat look like a dog (p(dog)=0.8, p(cat)=0.05)."
    files = sorted(Path(root).glob('*/*/*.png'))
    rows = [[0.05, 0.8, 0.15] if f.parent.name == 'cat' else [0.1, 0.3, 0.6] for f in files]
    return files, torch.tensor(rows)

def card_of(w, rel):
    (card,) = [c for c in w.cards.children if PurePosixPath(rel).name in c.children[1].value]
    return card

def test_widget_shows_moved_files_with_their_current_label(root):
    s = CleaningSession(root)
    files, probs = probs_for(root)
    w = DataCleaner.from_probs(s, files, probs, ['cat', 'dog', 'fox'], n_show=9)
    info = card_of(w, 'train/cat/cat2.png').children[1].value
    assert 'label <b>cat</b>' in info and f'loss {-math.log(0.05):.2f}' in info and 'pred dog' in info
    s.relabel('train/cat/cat2.png', 'dog'); w.refresh()
    w.apply_btn.click()
    assert 'train/cat/cat2.png → train/dog/cat2.png' in w.status.value                  # says what moved
    assert 'train/cat/cat2.png' not in w.shown()
    w.class_dd.value = 'dog'
    assert 'train/dog/cat2.png' in w.shown()
    card = card_of(w, 'train/dog/cat2.png')
    info = card.children[1].value
    assert 'label <b>dog</b>' in info and f'loss {-math.log(0.8):.2f}' in info          # the loss for the label it has now
    assert 'just moved here</b> from train/cat' in info and 'cleaner-moved' in card._dom_classes
    assert w.shown()[-1] == 'train/dog/cat2.png'        # sorted by its new, low loss (the dogs have -log 0.3)
    assert KEEP in card.children[-1].options and 'dog' not in card.children[-1].options
    w.undo_btn.click()
    assert 'train/dog/cat2.png' not in w.shown()
    w.class_dd.value = 'cat'
    info = card_of(w, 'train/cat/cat2.png').children[1].value
    assert 'label <b>cat</b>' in info and f'loss {-math.log(0.05):.2f}' in info and 'just moved here</b> from train/dog' in info

def test_widget_given_only_losses_says_which_label_a_loss_was_for(root):
    s = CleaningSession(root)
    w = DataCleaner(s, items_for(root), n_show=9)
    s.relabel('train/cat/cat2.png', 'fox'); w.apply_btn.click()
    w.class_dd.value = 'fox'
    info = card_of(w, 'train/fox/cat2.png').children[1].value
    assert 'label <b>fox</b>' in info and '(as cat, before the move)' in info and 'just moved here' in info

def test_from_probs_refuses_mismatched_input(root):
    s = CleaningSession(root)
    files, probs = probs_for(root)
    with pytest.raises(ValueError, match='one row per file'): DataCleaner.from_probs(s, files[:3], probs, ['cat', 'dog', 'fox'])
    with pytest.raises(ValueError, match='not one of the classes'): DataCleaner.from_probs(s, files, probs, ['cat', 'dog', 'emu'])
