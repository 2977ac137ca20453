#!/usr/bin/env python3
"""Count GoogleTest results per test case for one meson build directory.

Why Python: meson itself is Python and Debian's meson package depends on
python3, so any machine that can build coblock has it (packages.sh also lists
python3 explicitly). Reading XML with awk would be fragile.

Usage:
  count_junit.py clean BUILDDIR   remove the logs and gtest XML files a
                                  previous `meson test` left behind
  count_junit.py count BUILDDIR   print failures and a summary; the last line
                                  is `N passed, M failed, K skipped`

What meson 1.0.1 writes (verified with a throwaway gtest project):
- meson-logs/testlog.junit.xml: for a `protocol: 'gtest'` test whose gtest
  XML exists after the run, meson copies gtest's <testsuite> elements,
  renamed to '<project>.<test name>.<gtest suite>'. Each <testcase> has
  status="run" (a <failure> child when it failed, a <skipped> child after
  GTEST_SKIP) or status="notrun" (DISABLED_ tests).
- A test without such XML (exit-code tests, or a gtest program that crashed
  before writing it) is one <testcase name="<test name>"> in the suite named
  '<project>', with <failure/> for FAIL, <error/> for ERROR, <skipped/> for
  SKIP -- but NOTHING for TIMEOUT, which would therefore look like a pass.
- meson passes --gtest_output=xml:<test name>.xml relative to the build dir
  (or the test's workdir) and parses whatever file is there afterwards, even
  one left over from an earlier run: a program that crashes or times out can
  be reported with the stale per-case passes of its previous run.
- A program that exits non-zero after gtest wrote an all-pass XML
  (LeakSanitizer, a crash in a static destructor) shows only passing cases.
So the per-program verdicts in meson-logs/testlog.json (one JSON object a
line: name, result, returncode, ...) are the authority on whether a program
failed: a failed program with no failed case counts one extra failure, and a
program with no per-case results counts as one test. `clean` removes stale
XML before a run so the per-case numbers are this run's.
"""
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

BAD = {'FAIL', 'TIMEOUT', 'ERROR', 'INTERRUPT', 'UNEXPECTEDPASS'}


# meson copies each test's output into the XML verbatim, so a test that
# prints a control byte (a fuzz replay echoing a name from a hostile image)
# makes the file ill-formed XML 1.0. Those bytes carry no result: drop them.
INVALID_XML_CHARS = re.compile('[\x00-\x08\x0b\x0c\x0e-\x1f]')


def parse_junit(path):
    with open(path, encoding='utf-8', errors='replace') as f:
        text = INVALID_XML_CHARS.sub('', f.read())
    return ET.fromstring(text)


def load_json(path):
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def defined_tests(builddir):
    path = os.path.join(builddir, 'meson-info', 'intro-tests.json')
    return load_json(path) if os.path.exists(path) else []


def clean(builddir):
    for log in ('testlog.json', 'testlog.junit.xml'):
        try:
            os.remove(os.path.join(builddir, 'meson-logs', log))
        except FileNotFoundError:
            pass
    for t in defined_tests(builddir):
        if t.get('protocol') != 'gtest':
            continue
        xml = os.path.join(t.get('workdir') or builddir, t['name'] + '.xml')
        try:
            os.remove(xml)
        except FileNotFoundError:
            pass
    return 0


def program_verdicts(builddir):
    """Map test name -> meson result ('OK', 'FAIL', ...) from testlog.json."""
    verdicts = {}
    with open(os.path.join(builddir, 'meson-logs', 'testlog.json'),
              encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if line:
                rec = json.loads(line)
                verdicts[rec['name']] = rec['result']
    return verdicts


def project_names(builddir):
    info = load_json(os.path.join(builddir, 'meson-info',
                                  'intro-projectinfo.json'))
    names = {info.get('descriptive_name')}
    for sp in info.get('subprojects', []):
        names.add(sp.get('name'))
        names.add(sp.get('descriptive_name'))
    names.discard(None)
    return names


def case_outcome(case):
    tags = {child.tag for child in case}
    if 'failure' in tags or 'error' in tags:
        return 'failed'
    if 'skipped' in tags or case.get('status') == 'notrun':
        return 'skipped'
    return 'passed'


def count(builddir):
    if not defined_tests(builddir):
        # `meson test` writes no logs then ("No tests defined.").
        print('0 test programs')
        print('0 passed, 0 failed, 0 skipped')
        return 0
    verdicts = program_verdicts(builddir)
    projects = project_names(builddir)
    root = parse_junit(os.path.join(builddir, 'meson-logs', 'testlog.junit.xml'))

    # Per program: list of (case name, outcome) from gtest's own XML.
    cases = {name: [] for name in verdicts}
    # Longest names first so 'a.b' wins over 'a' for suite 'proj.a.b.Suite'.
    by_length = sorted(verdicts, key=len, reverse=True)
    for suite in root.iter('testsuite'):
        sname = suite.get('name', '')
        if sname in projects:
            continue  # one-result programs: judged by their verdict below
        owner = None
        for proj in projects:
            for prog in by_length:
                if sname.startswith(f'{proj}.{prog}.'):
                    owner, gsuite = prog, sname[len(proj) + len(prog) + 2:]
                    break
            if owner:
                break
        if owner is None:
            print(f'warning: junit suite {sname!r} matches no test program',
                  file=sys.stderr)
            continue
        for case in suite.iter('testcase'):
            cases[owner].append((f"{gsuite}.{case.get('name')}",
                                 case_outcome(case)))

    passed = failed = skipped = 0
    failures = []
    for prog in sorted(verdicts):
        verdict = verdicts[prog]
        results = cases[prog]
        if results and verdict != 'EXPECTEDFAIL':
            for name, outcome in results:
                if outcome == 'passed':
                    passed += 1
                elif outcome == 'skipped':
                    skipped += 1
                else:
                    failed += 1
                    failures.append(f'{prog}: {name}')
            if verdict in BAD and not any(o == 'failed' for _, o in results):
                failed += 1
                failures.append(f'{prog}: program {verdict} after its cases '
                                'passed (sanitizer report at exit, crash, '
                                'or timeout)')
        elif verdict in BAD:
            failed += 1
            failures.append(f'{prog}: program {verdict}'
                            + (' (no per-case results: crashed?)'
                               if verdict != 'TIMEOUT' else ''))
        elif verdict == 'SKIP':
            skipped += 1
        else:
            passed += 1

    for f in failures:
        print(f'  FAILED {f}')
    print(f'{len(verdicts)} test programs')
    print(f'{passed} passed, {failed} failed, {skipped} skipped')
    return 0


def main(argv):
    if len(argv) != 3 or argv[1] not in ('clean', 'count'):
        print(__doc__.split('\n\n')[1], file=sys.stderr)
        return 2
    try:
        return clean(argv[2]) if argv[1] == 'clean' else count(argv[2])
    except (OSError, ValueError, ET.ParseError) as e:
        print(f'cannot read test results in {argv[2]}: {e}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
