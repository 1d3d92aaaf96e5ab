#!/usr/bin/env python
"""Build the offline samples of every dataset for a size preset and report their size and build time.

  python data_scripts/build_samples.py                 # the active preset (COURSE_SIZE, default small)
  python data_scripts/build_samples.py --size tiny
  python data_scripts/build_samples.py --size small --only digits shapes

Samples already built are reused (shown as `cached`); `--rebuild` moves them aside first (nothing is deleted).
"""
import argparse, os, sys, time
from pathlib import Path

def du(folder: Path) -> tuple[int, int]:
    "Number of files and bytes under `folder`."
    files = [p for p in folder.rglob('*') if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)

def _human(n):
    for unit in ('B', 'kB', 'MB', 'GB'):
        if n < 1000: return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.1f} {unit}'
        n /= 1000
    return f'{n:.1f} TB'

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--size', choices=['tiny', 'small', 'full'], help='size preset (default: the course setting)')
    ap.add_argument('--only', nargs='+', metavar='NAME', help='build only these datasets')
    ap.add_argument('--rebuild', action='store_true', help='move existing samples aside and build them again')
    ap.add_argument('--data', help='data folder (default: the course setting, COURSE_DATA)')
    args = ap.parse_args(argv)
    if args.data: os.environ['COURSE_DATA'] = str(Path(args.data).resolve())
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import course_lib.download as dl
    dl.get_settings(reload=True)   # pick up --data even if course_lib was imported before
    size = args.size or dl.get_settings().size
    names = [n for n, s in dl.DATASETS.items() if s.builder] if not args.only else args.only
    unknown = [n for n in names if n not in dl.DATASETS or not dl.DATASETS[n].builder]
    if unknown: ap.error(f"no offline sample for {', '.join(unknown)}; these have one: "
                         f"{', '.join(n for n, s in dl.DATASETS.items() if s.builder)}")
    print(f'offline samples, preset {size}, in {dl.data_path()/"offline"/size}')
    total_t, total_b, failed = 0.0, 0, []
    for n in names:
        dest = dl.offline_path(dl.DATASETS[n].builder, size)
        if args.rebuild and dest.exists():
            aside = dest.with_name(f'{dest.name}.old-{time.strftime("%Y%m%d-%H%M%S")}')
            os.rename(dest, aside); print(f'  (moved the previous {n} to {aside})')
        cached = dl.is_complete(dest)
        t0 = time.perf_counter()
        try: out = dl.build_offline(n, size)
        except Exception as e:
            print(f'{n:16} FAILED: {type(e).__name__}: {e}', file=sys.stderr); failed.append(n); continue
        dt = time.perf_counter() - t0
        nf, nb = du(out)
        total_t += dt; total_b += nb
        print(f'{n:16} {nf:7,} files {_human(nb):>10}   {"cached" if cached else f"{dt:6.1f} s"}', flush=True)
    print(f'{"total":16} {"":13} {_human(total_b):>10}   {total_t:6.1f} s')
    if failed: print(f"failed: {', '.join(failed)}", file=sys.stderr); return 1
    return 0

if __name__ == '__main__': sys.exit(main())
