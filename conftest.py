"""pytest, for the whole repository: a per-notebook (per-file) wall-time summary at the end of the run, so
`make test` and `make test-small` show how long each lesson took in the active preset."""
import os
from collections import defaultdict

_times = defaultdict(float)

def pytest_runtest_logreport(report):
    _times[report.nodeid.split('::')[0]] += report.duration

def pytest_terminal_summary(terminalreporter):
    if not _times: return
    size = os.environ.get('COURSE_SIZE', 'settings.ini')
    tr = terminalreporter
    tr.section(f'time per file (preset {size}; setup+call+teardown, kernel start-up included)')
    for path, t in sorted(_times.items(), key=lambda kv: -kv[1]):
        tr.write_line(f'{t:8.1f} s  {path}')
    tr.write_line(f'{sum(_times.values()):8.1f} s  total (summed over workers)')
