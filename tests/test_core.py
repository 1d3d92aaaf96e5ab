"Settings, presets, seeding and the torch/torchvision check, in plain Python."
import os, subprocess, sys
from pathlib import Path
import pytest
import course_lib.core as core

def _settings(monkeypatch, tmp_path=None, ini=None, **env):
    for k in ('COURSE_SIZE', 'COURSE_DATA', 'COURSE_SEED', 'COURSE_DEVICE', 'COURSE_WORKERS', 'COURSE_SETTINGS'):
        monkeypatch.delenv(k, raising=False)
    if ini is not None:
        p = tmp_path/'settings.ini'; p.write_text(ini); monkeypatch.setenv('COURSE_SETTINGS', str(p))
    for k, v in env.items(): monkeypatch.setenv(k, v)
    return core.get_settings(reload=True)

@pytest.fixture(autouse=True)
def _restore():
    yield
    core._SETTINGS = None

@pytest.mark.parametrize('var,value,expect', [
    ('COURSE_SIZE', 'huge', 'tiny, small, full'), ('COURSE_SEED', '-3', 'integer'), ('COURSE_SEED', 'abc', 'integer'),
    ('COURSE_DEVICE', 'tpu', 'auto, cpu, cuda, mps'), ('COURSE_WORKERS', 'many', "'auto' or an integer")])
def test_invalid_values_list_the_valid_ones(monkeypatch, var, value, expect):
    with pytest.raises(core.SettingsError) as e: _settings(monkeypatch, **{var: value})
    assert expect in str(e.value) and var in str(e.value) and value in str(e.value)

def test_invalid_value_in_file_names_the_file(monkeypatch, tmp_path):
    with pytest.raises(core.SettingsError, match='settings.ini'):
        _settings(monkeypatch, tmp_path, ini='[course]\nsize = medium\n')

def test_env_overrides_file(monkeypatch, tmp_path):
    s = _settings(monkeypatch, tmp_path, ini='[course]\nsize = full\nseed = 7\ndata = mydata\n', COURSE_SIZE='tiny')
    assert (s.size, s.seed, s.data) == ('tiny', 7, (tmp_path/'mydata').resolve())
    assert core.preset(tiny='t', small='s', full='f') == 't'

def test_missing_settings_file_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv('COURSE_SETTINGS', str(tmp_path/'nope.ini'))
    with pytest.raises(core.SettingsError, match='not a file'): core.get_settings(reload=True)

def test_seed_everything_repeats():
    import torch, numpy as np, random
    def draw():
        core.seed_everything(123); return random.random(), np.random.rand(), torch.rand(2).tolist()
    assert draw() == draw()

def test_workers_auto_is_zero_in_notebooks_on_macos_windows(monkeypatch):
    _settings(monkeypatch, COURSE_WORKERS='auto')
    assert core.default_workers('darwin', notebook=True) == 0 and core.default_workers('win32', notebook=True) == 0
    assert core.default_workers('linux', notebook=False) >= 0
    _settings(monkeypatch, COURSE_WORKERS='3')
    assert core.default_workers('darwin', notebook=True) == 3

def test_torch_pair_check_names_the_fix():
    with pytest.raises(ImportError, match=r'pip install torch==2\.15\.0 torchvision==0\.29\.2'):
        core.check_torch_pair('2.15.0', '0.28.0')
    assert 'torch 2.15.0' in core.check_torch_pair('2.15.0+cu130', '0.29.2')

def test_import_course_lib_checks_the_pair():
    "`import course_lib` runs the check (a fresh interpreter, so nothing is cached)."
    code = "import importlib.metadata as m, course_lib; print(course_lib.TORCH_PAIR)"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'torch' in r.stdout and 'torchvision' in r.stdout

def test_seed_everything_switches_deterministic_algorithms_and_back(monkeypatch):
    import torch
    monkeypatch.delenv('CUBLAS_WORKSPACE_CONFIG', raising=False)
    try:
        core.seed_everything(3, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert os.environ['CUBLAS_WORKSPACE_CONFIG'] == ':4096:8'
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        core.seed_everything()
    assert not torch.are_deterministic_algorithms_enabled()

def test_seeded_generator_uses_the_course_seed(monkeypatch, tmp_path):
    import torch
    _settings(monkeypatch, COURSE_SEED='123')
    assert torch.equal(torch.rand(4, generator=core.seeded_generator()), torch.rand(4, generator=torch.Generator().manual_seed(123)))
    assert torch.equal(torch.rand(4, generator=core.seeded_generator(7)), torch.rand(4, generator=torch.Generator().manual_seed(7)))

@pytest.mark.skipif(sys.platform != 'linux', reason='workers over a class defined in a test need fork')
def test_seeded_loader_workers_draw_the_same_numbers_every_run():
    "The worker seeds come from the loader's generator: two runs with the same seed give the same numbers in workers."
    import random, numpy as np, torch
    from torch.utils.data import DataLoader
    class Items(torch.utils.data.Dataset):
        def __len__(self): return 6
        def __getitem__(self, i): return torch.tensor([random.random(), np.random.rand(), torch.rand(()).item()])
    run = lambda s: torch.cat(list(DataLoader(Items(), batch_size=2, num_workers=2, multiprocessing_context='fork',
                                              generator=core.seeded_generator(s))))
    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a, b) and not torch.equal(a, c)
