#!/usr/bin/env python
"""Fetch the full datasets of the course (download, check, unpack), or list what is there.

  python data_scripts/fetch.py --list             # every dataset: size, status, offline sample
  python data_scripts/fetch.py digits reviews     # fetch some
  python data_scripts/fetch.py --all              # fetch everything that can be downloaded

Without internet, download an archive by hand and put it into <data>/downloads/ under the name that
`--list --files` shows; the next fetch checks it and uses it instead of downloading. The offline samples
(COURSE_SIZE=tiny or small) never need the network.
"""
import argparse, os, sys
from pathlib import Path

def _human(n):
    if n is None: return '?'
    for unit in ('B', 'kB', 'MB', 'GB'):
        if n < 1000: return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.1f} {unit}'
        n /= 1000
    return f'{n:.1f} TB'

def status(dl, src):
    "How far the full dataset `src` is on this machine."
    if dl.is_complete(dl.full_path(src.name)): return 'fetched'
    if not src.has_full: return 'offline-only'
    if (dl.downloads_path()/src.archive_name).exists(): return 'archive downloaded, not unpacked'
    return 'manual download needed' if src.url is None else 'not fetched'

def offline_status(dl, src):
    "Which offline samples are built, and where."
    if src.builder is None: return 'none (full data only)'
    built = [s for s in ('tiny', 'small', 'full') if dl.is_complete(dl.offline_path(src.builder, s))]
    where = dl.offline_path(src.builder, '<size>').relative_to(dl.data_path())
    return f"built: {', '.join(built)} in {where}" if built else f'not built yet ({where}, built on first use)'

def list_datasets(dl):
    rows = [(s.name, _human(s.size) if s.has_full else '-', status(dl, s), offline_status(dl, s)) for s in dl.DATASETS.values()]
    w = [max(len(r[i]) for r in rows + [('name', 'full size', 'full data', 'offline sample')]) for i in range(4)]
    print(f'data folder: {dl.data_path()}')
    for r in [('name', 'full size', 'full data', 'offline sample')] + rows:
        print('  '.join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
    print(f'\nDrop a manually downloaded archive into {dl.downloads_path()} (names: `--list --files`).')

def list_files(dl):
    for s in dl.DATASETS.values():
        if s.has_full: print(f'{s.name:16} {dl.downloads_path()/s.archive_name}   <- {s.url or s.manual}')

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('names', nargs='*', help='datasets to fetch (see --list)')
    ap.add_argument('--list', action='store_true', help='list the datasets with their size and status')
    ap.add_argument('--files', action='store_true', help='with --list: where each archive goes and where it comes from')
    ap.add_argument('--all', action='store_true', help='fetch every dataset that has a full version')
    ap.add_argument('--data', help='data folder (default: the course setting, COURSE_DATA)')
    ap.add_argument('--timeout', type=float, default=30, help='seconds to wait for the server (default 30)')
    ap.add_argument('--retries', type=int, default=3, help='retries after a network error (default 3)')
    ap.add_argument('--max-gb', type=float, help="unpack up to this many GB (default: 1.5x the registry's unpacked size "
                                                 "+ 64 MiB); only for an archive you trust that outgrew the registry")
    ap.add_argument('--quiet', action='store_true', help='no progress bar')
    args = ap.parse_args(argv)
    if args.data: os.environ['COURSE_DATA'] = str(Path(args.data).resolve())
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # works without `pip install -e .` too
    import course_lib.download as dl
    from course_lib.archive import DataError
    dl.get_settings(reload=True)   # pick up --data even if course_lib was imported before
    if args.list:
        list_files(dl) if args.files else list_datasets(dl)
        return 0
    names = [n for n, s in dl.DATASETS.items() if s.has_full] if args.all else args.names
    if not names: ap.error('name a dataset to fetch, or use --list or --all')
    unknown = [n for n in names if n not in dl.DATASETS]
    if unknown: ap.error(f"unknown dataset(s) {', '.join(unknown)}; known: {', '.join(dl.DATASETS)}")
    failed = []
    for n in names:
        src = dl.DATASETS[n]
        if not src.has_full:
            print(f'{n}: offline only (no full version); its sample is built on first use or by build_samples.py'); continue
        try:
            out = dl.fetch(n, quiet=args.quiet, timeout=args.timeout, retries=args.retries,
                           max_bytes=int(args.max_gb * 1e9) if args.max_gb else None)
            print(f'{n}: ready in {out}')
        except DataError as e:
            print(f'{n}: NOT fetched.\n  {e}', file=sys.stderr); failed.append(n)
    if failed:
        print(f"\nNot fetched: {', '.join(failed)}. The lessons still run offline with COURSE_SIZE=tiny or small.", file=sys.stderr)
        return 1
    return 0

if __name__ == '__main__': sys.exit(main())
