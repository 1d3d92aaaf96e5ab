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
