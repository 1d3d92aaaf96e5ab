"""The cleaner must never lose or duplicate a file: random sequences of decisions, apply and undo checked against a
model; a process killed in the middle of apply (or undo) and then resumed; name clashes; non-ASCII names; a
read-only class folder."""
import os, random, signal, subprocess, sys, textwrap
from pathlib import Path, PurePosixPath

import pytest

from course_lib.cleaning import DELETE, TRASH, JOURNAL, CleaningError, CleaningSession
from test_cleaner import make_images, snapshot

CLASSES = ('ant', 'bee', 'émeu', '猫')
def dataset(root, n=4):
    "Two splits, four classes (two with non-ASCII names), and the same file names in every class."
    return make_images(root, [f'{s}/{c}/img{i}.png' for s in ('train', 'valid') for c in CLASSES for i in range(n)] +
                       ['train/ant/ça va.png', 'train/bee/日本.png'])

def check_moved(before, after, expected):
    "Every file exists exactly once; files named in `expected` {old path: test(new path)} moved as told, others stayed."
    assert set(after) == set(before), 'a file was lost or duplicated'
    for h, old in before.items():
        new = after[h]
        if old in expected: assert expected[old](new), f'{old} ended at {new}'
        else: assert new == old, f'{old} moved to {new} without a decision'

def goes_to(decision, old):
    "What a correct apply does with `old`: into the trash, or into the new class folder of the same split."
    p = PurePosixPath(old)
    if decision == DELETE: return lambda new: new.startswith(f'{TRASH}/{p.parent}/') and PurePosixPath(new).suffix == p.suffix
    return lambda new: PurePosixPath(new).parent == p.parent.parent/decision and PurePosixPath(new).stem.startswith(p.stem)

@pytest.mark.parametrize('seed', range(4))
def test_random_decisions_apply_undo(tmp_path, seed):
    rng = random.Random(seed)
    root = dataset(tmp_path/'data', n=3)
    now = original = snapshot(root)
    s = CleaningSession(root)
    stack = []                                        # snapshots before each apply not undone yet
    for step in range(36):
        live = sorted(p for p in now.values() if not p.startswith(TRASH))
        op = rng.choices(['relabel', 'delete', 'keep', 'apply', 'undo', 'reopen'], [5, 3, 1, 2, 2, 1])[0]
        if op == 'relabel': s.relabel(rng.choice(live), rng.choice(CLASSES))
        elif op == 'delete': s.delete(rng.choice(live))
        elif op == 'keep' and s.pending: s.keep(rng.choice(sorted(s.pending)))
        elif op == 'reopen': s = CleaningSession(root)             # a new kernel on the same folder
        elif op == 'apply':
            pending = s.pending
            moves = s.apply()
            assert len(moves) == len(pending) and s.n_pending == 0
            after = snapshot(root)
            check_moved(now, after, {old: goes_to(d, old) for old, d in pending.items()})
            if moves: stack.append(now)
            now = after
        elif op == 'undo':
            moves = s.undo()
            assert bool(moves) == bool(stack)
            if stack: now = snapshot(root); assert now == stack.pop()
        if op in ('apply', 'undo'): assert set(now) == set(original) and s.verify() == []
    while stack: s.undo(); assert snapshot(root) == stack.pop()
    assert snapshot(root) == original

# ---- killed mid-apply -----------------------------------------------------------------------------------------
CRASH = textwrap.dedent('''
    import os, sys, time
    import course_lib.cleaning as cl
    root, action, k, how = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    real, n = cl._move, 0
    def move(src, dst):                       # the k-th move dies before or after the rename
        global n; n += 1
        if n == k and how == 'before': os._exit(9)
        real(src, dst)
        if n == k and how == 'after': os._exit(9)
        if n == k and how == 'sigkill': print('MOVED', flush=True); time.sleep(60)
    cl._move = move
    getattr(cl.CleaningSession(root), action)()
    os._exit(0)
''')

def run_until_killed(root, action, k, how):
    cmd = [sys.executable, '-c', CRASH, str(root), action, str(k), how]
    if how != 'sigkill':
        assert subprocess.run(cmd, timeout=300).returncode == 9
        return
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == 'MOVED'
        p.send_signal(signal.SIGKILL)
        assert p.wait(120) == -signal.SIGKILL
    finally:
        if p.poll() is None: p.kill()
        p.stdout.close()

def decide_many(root):
    s = CleaningSession(root)
    for i in range(3):
        s.relabel(f'train/ant/img{i}.png', 'bee'); s.relabel(f'train/bee/img{i}.png', 'ant')   # a swap: same names
        s.delete(f'valid/émeu/img{i}.png'); s.relabel(f'valid/猫/img{i}.png', 'émeu')
    return s.pending

@pytest.mark.parametrize('k,how', [(1, 'before'), (5, 'after'), (12, 'after'), (7, 'sigkill')])
def test_killed_mid_apply_then_resumed(tmp_path, k, how):
    root = dataset(tmp_path/'data')
    before, pending = snapshot(root), decide_many(root)
    assert len(pending) == 12
    run_until_killed(root, 'apply', k, how)
    half = snapshot(root)
    assert set(half) == set(before)                              # even half-way nothing is lost or doubled
    assert sum(half[h] != before[h] for h in before) == k - (how == 'before')
    s = CleaningSession(root)
    assert 'interrupted' in s.verify()[0] and s.n_pending == 0   # the plan is journalled, decisions are not re-planned
    s.apply()                                                    # apply finishes the interrupted batch first
    after = snapshot(root)
    check_moved(before, after, {old: goes_to(d, old) for old, d in pending.items()})
    again = CleaningSession(root)                                # replaying the journal changes nothing
    assert again.resume() == [] and again.apply() == [] and again.verify() == [] and snapshot(root) == after
    done = [r for r in again.journal.records if r['op'] == 'done']
    assert len(done) == 12 and len({(r['batch'], r['i']) for r in done}) == 12
    again.undo()
    assert snapshot(root) == before

def test_killed_mid_undo_then_resumed(tmp_path):
    root = dataset(tmp_path/'data')
    before = snapshot(root); decide_many(root)
    s = CleaningSession(root); s.apply()
    applied = snapshot(root)
    run_until_killed(root, 'undo', 6, 'after')
    assert set(snapshot(root)) == set(before) and snapshot(root) not in (before, applied)
    s = CleaningSession(root)
    assert len(s.resume()) == 12 - 6 and snapshot(root) == before and s.verify() == []
    assert s.undo() == [] and s.resume() == [] and snapshot(root) == before    # the undo is finished, not repeated

def test_same_name_in_every_class(tmp_path):
    root = dataset(tmp_path/'data', n=2)
    before = snapshot(root)
    s = CleaningSession(root)
    for c in CLASSES[1:]: s.relabel(f'train/{c}/img0.png', 'ant')   # three img0.png into ant, which has one
    s.delete('train/ant/img0.png'); s.delete('valid/ant/img0.png')
    dsts = sorted(m.dst for m in s.apply())
    assert dsts == [f'{TRASH}/train/ant/img0.png', f'{TRASH}/valid/ant/img0.png',
                    'train/ant/img0_1.png', 'train/ant/img0_2.png', 'train/ant/img0_3.png']
    assert set(snapshot(root)) == set(before)
    s.relabel('train/bee/img1.png', 'ant'); s.delete('train/ant/img1.png')
    s.apply(); s.undo(); s.undo()
    assert snapshot(root) == before
    s.delete('train/ant/img0.png'); s.apply()                       # the trash already held that name once
    s.delete('train/bee/img1.png'); s.apply()
    assert set(snapshot(root)) == set(before)

def test_non_ascii_names(tmp_path):
    root = dataset(tmp_path/'dønnées 数据', n=1)
    before = snapshot(root)
    s = CleaningSession(root)
    s.relabel('train/ant/ça va.png', '猫'); s.relabel('train/bee/日本.png', 'émeu'); s.delete('valid/猫/img0.png')
    s = CleaningSession(root)                                       # decisions read back from the journal
    assert sorted(m.dst for m in s.apply()) == [f'{TRASH}/valid/猫/img0.png', 'train/émeu/日本.png', 'train/猫/ça va.png']
    assert (root/'train/猫/ça va.png').exists() and CleaningSession(root).verify() == []
    s.undo(); assert snapshot(root) == before

def make_unwritable(folder):
    "Make `folder` truly unwritable for this process and return the function that undoes it (None: cannot)."
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)
    # root ignores permission bits: use the immutable attribute instead, where the file system allows it
    if subprocess.run(['chattr', '+i', str(folder)], capture_output=True).returncode == 0:
        return lambda: subprocess.run(['chattr', '-i', str(folder)], check=True)
    return None

@pytest.mark.parametrize('where', ['source', 'target'])
def test_read_only_class_folder(tmp_path, where):
    root = dataset(tmp_path/'data', n=2)
    s = CleaningSession(root)
    s.relabel('train/ant/img0.png', 'émeu'); s.relabel('train/bee/img0.png', 'émeu'); s.delete('train/ant/img1.png')
    locked = root/'train'/('bee' if where == 'source' else 'émeu')
    try: unlock = make_unwritable(locked)
    except FileNotFoundError: unlock = None
    if unlock is None: pytest.skip('cannot make a folder unwritable here: running as root and `chattr +i` is refused')
    try:
        assert not os.access(locked, os.W_OK), 'the folder is still writable'
        before, journal = snapshot(root), (root/JOURNAL).read_text()
        with pytest.raises(CleaningError, match=r'Nothing was moved: cannot write to train/' + locked.name):
            s.apply()
        assert snapshot(root) == before and (root/JOURNAL).read_text() == journal and s.n_pending == 3
    finally: unlock()
    assert len(s.apply()) == 3                                    # writable again: the kept decisions apply

def test_killed_mid_apply_then_abandoned(tmp_path):
    "abandon() after a crash: files stay exactly where the crash left them, the journal says so, undo takes them back."
    root = dataset(tmp_path/'data')
    before, pending = snapshot(root), decide_many(root)
    run_until_killed(root, 'apply', 5, 'after')               # the 5th rename happened, its 'done' record did not
    half = snapshot(root)
    s = CleaningSession(root)
    dropped = s.abandon()
    assert len(dropped) == 12 - 5 and snapshot(root) == half and s.verify() == []
    assert s.apply() == [] and s.n_pending == 0
    assert len(s.undo()) == 5 and snapshot(root) == before

# ---- two kernels on the same folder ---------------------------------------------------------------------------------
SLOW = textwrap.dedent('''
    import sys, time
    import course_lib.cleaning as cl
    real = cl._move
    def slow(src, dst):
        print('MOVING', flush=True); time.sleep(0.4); real(src, dst)
    cl._move = slow
    print(len(cl.CleaningSession(sys.argv[1]).apply()), flush=True)
''')

def test_two_kernels_apply_to_the_same_folder(tmp_path):
    root = dataset(tmp_path/'data')
    before, pending = snapshot(root), decide_many(root)
    impatient = CleaningSession(root, lock_timeout=0.3)       # opened before the other kernel starts
    patient = CleaningSession(root, lock_timeout=120)         # waits (30 s by default; more for a slow test machine)
    p = subprocess.Popen([sys.executable, '-c', SLOW, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == 'MOVING'        # the other kernel is half-way through its batch
        with pytest.raises(CleaningError, match='Another kernel or process is changing'): impatient.apply()
        with pytest.raises(CleaningError, match='Another kernel'): impatient.relabel('train/ant/img3.png', 'bee')
        assert patient.apply() == []                          # waited; then found nothing left to do
        assert p.wait(300) == 0 and p.stdout.read().split()[-1] == '12'
    finally:
        if p.poll() is None: p.kill()
        p.stdout.close()
    check_moved(before, snapshot(root), {old: goes_to(d, old) for old, d in pending.items()})
    assert patient.verify() == [] and len(patient.history()) == 1 and patient.n_pending == 0
    assert len(impatient.undo()) == 12 and snapshot(root) == before      # the lock is free again
