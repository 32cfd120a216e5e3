#!/usr/bin/env python3
"""Statements per purchase flow of bench databases, from PostgreSQL's log.

Usage: scripts/pg-statements-per-flow.py LOGFILE DATABASE...
Run the benchmark with -pg-log-statements (log_statement=all on its database;
the log line prefix must hold %d, as Debian's default '%m [%p] %q%u@%d ' does).
Statements are grouped by their first 80 characters and divided by the
purchases (INSERT INTO idempotency_keys), warmup flows and seeding included.
"""
import re, sys, collections
L = sys.argv[1]
dbs = sys.argv[2:]
entries={d:[] for d in dbs}
cur=None
start=re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d')
for line in open(L,errors='replace'):
    if start.match(line):
        cur=None
        for d in dbs:
            if '@'+d+' LOG:' in line:
                m=re.search(r'LOG:  (statement|execute [^:]*): ?(.*)',line)
                if m:
                    cur=[m.group(2)]; entries[d].append(cur)
    elif cur is not None and line.startswith('\t'):
        cur.append(line.strip())
for d in dbs:
    c=collections.Counter()
    for e in entries[d]:
        t=' '.join(' '.join(e).split())
        t=re.sub(r'VALUES \(.*','VALUES …',t)
        c[t[:80]]+=1
    purchases=sum(v for k,v in c.items() if k.startswith('INSERT INTO idempotency_keys'))
    total=sum(c.values())
    print(f'== {d}: {total} statements, {purchases} purchases ({total/purchases:.1f} per purchase, incl. seeding)')
    for k,v in c.most_common(40):
        print(f'{v/purchases:6.2f} {v:6d} {k}')
