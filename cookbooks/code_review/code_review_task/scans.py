"""Line scans for the detectors (see :mod:`.detectors`): each takes one file of a
diff and returns the new-file numbers of the added lines it flags. Regular
expressions over code with its comments removed; not a parser, and it need not be."""

from __future__ import annotations

import re
from collections.abc import Callable

from .diffs import FileDiff, Line
from .source import block_end, call_text, code, literals

Scan = Callable[[FileDiff], list[int]]


def added_code(f: FileDiff) -> list[tuple[int, Line, str]]:
    """(index in the new-side lines, line, code without comment) of every added line."""
    lines = list(f.lines())
    return [(i, ln, code(ln.text, f.language)) for i, ln in enumerate(lines) if ln.added]


def grep(pattern: str, flags: int = 0) -> Scan:
    rx = re.compile(pattern, flags)

    def scan(f: FileDiff) -> list[int]:
        return [ln.number for _, ln, c in added_code(f) if rx.search(c)]

    return scan


# -- sql-injection ----------------------------------------------------------------------

_SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM|WHERE|ORDER BY|LIMIT|VALUES|AND|OR)\b"
)
_SQL_CALL = re.compile(
    r"\.(execute|executemany|executescript|Query|QueryRow|Exec|QueryContext|ExecContext"
    r"|QueryRowContext|raw)\("
)


def _sql_literal(body: str) -> bool:
    return bool(
        re.search(
            r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|WHERE|AND|OR|ORDER BY|GROUP BY)\b", body
        )
    )


def scan_sql_any(f: FileDiff) -> list[int]:
    return [
        ln.number
        for _, ln, c in added_code(f)
        if _SQL_CALL.search(c) or any(_SQL_WORDS.search(body) for _, body in literals(c))
    ]


def scan_sql_built(f: FileDiff) -> list[int]:
    hits = []
    for _, ln, c in added_code(f):
        for m in re.finditer(
            r"""(?P<prefix>\b[rRbBfFuU]{1,2})?(?P<q>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)""",
            c,
        ):
            body, prefix = m.group("q"), (m.group("prefix") or "").lower()
            if not _sql_literal(body):
                continue
            after, before = c[m.end() :], c[: m.start()]
            if (
                ("f" in prefix and "{" in body)
                or re.match(r"\s*%\s*[\w(]", after)
                or after.startswith(".format(")
                or re.match(r"\s*\+\s*[\w(]", after)
                or re.search(r"[\w)\]]\s*\+\s*$", before)
                or "Sprintf(" in before
            ):
                hits.append(ln.number)
                break
    return hits


# -- command-injection -----------------------------------------------------------------

EXEC = (
    r"(subprocess\.(run|call|check_call|check_output|Popen)|os\.system|os\.popen"
    r"|exec\.Command(Context)?)\("
)


def _built(text: str) -> bool:
    """Does this text build a string from parts (f-string, %, .format, +, Sprintf)?"""
    if any("f" in p.lower() and "{" in b for p, b in literals(text)):
        return True
    return bool(
        re.search(
            r"""["']\s*%\s*[\w(]|["']\.format\(|["'`]\s*\+\s*\w|\w\s*\+\s*["'`]|Sprintf\(""", text
        )
    )


def scan_shell_string(f: FileDiff) -> list[int]:
    rows = added_code(f)
    lines = list(f.lines())
    hits = []
    for idx, ln, c in rows:
        if not re.search(EXEC, c):
            continue
        text = call_text(lines, idx)
        shell = (
            "shell=True" in text
            or re.search(r"os\.(system|popen)\(", text)
            or re.search(r"""exec\.Command(Context)?\((ctx,\s*)?"(/bin/)?(ba)?sh",\s*"-c\"""", text)
        )
        if not shell:
            continue
        built = _built(text)
        if not built:
            # the command string was built a few lines before and passed by name
            arg = re.search(
                r"""(?:system|popen|run|call|check_output|Popen|"-c",)\s*\(?\s*(\w+)\s*[,)]""", text
            )
            if arg:
                name = arg.group(1)
                for j in range(max(0, idx - 3), idx):
                    prev = lines[j].text
                    if re.match(rf"\s*{name}\s*:?=", prev) and _built(prev):
                        built = True
        if built:
            hits.append(ln.number)
    return hits


# -- unchecked-error -------------------------------------------------------------------

_GO_ERR_CALLS = (
    r"json\.Unmarshal|os\.Remove(All)?|os\.MkdirAll|os\.Mkdir|os\.WriteFile|os\.Setenv|os\.Chmod"
    r"|os\.Rename|io\.Copy|\w+\.Encode|\w+\.Decode|\w+\.Exec(Context)?|\w+\.Scan|\w+\.Flush"
    r"|\w+\.Commit|\w+\.Rollback|\w+\.Shutdown|\w+\.Sync|\w+\.Ping|\w+\.Run|\w+\.Start"
    r"|\w+\.WriteString|\w+\.Write|\w+\.Send"
)


def scan_err_discarded(f: FileDiff) -> list[int]:
    if f.language != "go":
        return []
    hits = []
    for _, ln, c in added_code(f):
        s = c.strip()
        if re.match(r"\w+(\s*,\s*\w+)*\s*,\s*_\s*:?=\s*[\w.]+\(", s) and "<-" not in s:
            hits.append(ln.number)  # value, _ := call(...)
        elif re.match(r"_\s*=\s*[\w.]+\(", s) or re.match(r"_\s*,\s*_\s*=\s*[\w.]+\(", s):
            hits.append(ln.number)  # _ = call(...)
        elif re.match(rf"({_GO_ERR_CALLS})\(", s) or re.match(
            r"[\w.]+\([^()]*\)\.(Encode|Decode|Run|Start)\(", s
        ):
            hits.append(ln.number)  # the call's error result is dropped on the floor
    return hits


def scan_swallowed(f: FileDiff) -> list[int]:
    if f.language != "python":
        return []
    lines = list(f.lines())
    hits = []
    for idx, ln, c in added_code(f):
        m = re.match(r"\s*except\s*(?P<what>[^:]*?)\s*(as \w+)?\s*:\s*(?P<inline>.*)$", c)
        if not m:
            continue
        what = m.group("what").strip("() ")
        broad = what in ("", "Exception", "BaseException")
        body = [m.group("inline")] if m.group("inline") else []
        if not body:
            end = block_end(lines, idx)
            body = [code(x.text, "python").strip() for x in lines[idx + 1 : end] if x.text.strip()]
        silent = len(body) == 1 and (
            body[0] in ("pass", "continue", "...")
            or (broad and re.fullmatch(r"return( None| \[\]| \{\}| False| 0| \"\")?", body[0]))
        )
        if silent and (broad or body[0] in ("pass", "...")):
            hits.append(ln.number)
    return hits


def scan_returncode(f: FileDiff) -> list[int]:
    if f.language != "python":
        return []
    lines = list(f.lines())
    hits = []
    for idx, ln, c in added_code(f):
        if re.match(r"\s*subprocess\.(run|call|Popen)\(", c) or re.match(r"\s*os\.system\(", c):
            text = call_text(lines, idx)
            if "check=True" not in text:
                hits.append(ln.number)
    return hits


ERROR_ANY = re.compile(
    r"\bexcept\b|\btry:|\braise\b|\berr\b|\berrors\.|\bpanic\(|,\s*_\s*:?=|^\s*_\s*=|"
    r"returncode|check=|\bError\(|Exception\b"
)

# -- resource-leak ---------------------------------------------------------------------

_PY_ACQUIRE = (
    r"open|io\.open|sqlite3\.connect|psycopg2?\.connect|socket\.socket|socket\.create_connection"
    r"|urlopen|urllib\.request\.urlopen|requests\.Session|tempfile\.NamedTemporaryFile"
    r"|tempfile\.TemporaryFile|zipfile\.ZipFile|tarfile\.open|\w+\.connect"
)
_GO_ACQUIRE = (
    r"os\.Open|os\.Create|os\.OpenFile|http\.Get|http\.Post|http\.Head|\w+\.Do|sql\.Open"
    r"|(?:\w+\.)*\w*(?:[cC]lient|http)\.(?:Get|Post|PostForm|Head)"
    r"|net\.Dial|net\.DialTimeout|\w+\.Query|\w+\.QueryContext|\w+\.Listen|net\.Listen"
    r"|gzip\.NewReader|zip\.OpenReader|\w+\.Begin|\w+\.BeginTx"
)
ACQUIRE_ANY = re.compile(rf"\b({_PY_ACQUIRE}|{_GO_ACQUIRE})\(")


def scan_never_closed(f: FileDiff) -> list[int]:
    lines = list(f.lines())
    hits = []
    for idx, ln, c in added_code(f):
        if f.language == "python":
            m = re.match(rf"\s*(\w+)\s*=\s*({_PY_ACQUIRE})\(", c)
        else:
            m = re.match(rf"\s*(\w+)\s*,\s*\w+\s*:?=\s*({_GO_ACQUIRE})\(", c)
        if not m:
            continue
        name = m.group(1)
        later = "\n".join(code(x.text, f.language) for x in lines[idx + 1 :])
        released = (
            re.search(rf"\b{name}(\.Body)?\.(close|Close|Rollback|Commit)\(", later)
            or re.search(
                rf"\bwith\s+{name}\b|closing\({name}\)|\breturn\s+{name}[ \t]*($|[,)])", later, re.M
            )
            or re.search(rf"\bself\.\w+\s*=\s*{name}\b|\b{name},\s*nil\b", later)
            or re.search(rf"\bdefer\s+{name}|\.Serve(TLS)?\(\s*{name}\b", later)
        )
        if not released:
            hits.append(ln.number)
    return hits


# -- off-by-one ------------------------------------------------------------------------


def scan_len_bound(f: FileDiff) -> list[int]:
    rx = re.compile(
        r"<=\s*len\(|range\(len\([^()]*\)\s*-\s*1\)|\[\s*len\((\w+)\)\s*\]"
        r"|\[[^\]]*len\([^()]*\)\s*\+\s*1\s*\]|<\s*len\([^()]*\)\s*-\s*1\s*;"
        r"|range\(\s*len\([^()]*\)\s*\+\s*1\)|range\(1,\s*len\([^()]*\)\s*\+\s*1\)"
    )
    return [ln.number for _, ln, c in added_code(f) if rx.search(c)]


def scan_boundary_arith(f: FileDiff) -> list[int]:
    rx = re.compile(
        r"(?<![+\-*/%])[+-]\s*1\b(?!\s*[:=]|\.)|\bpage\w*\s*\*|\*\s*page\b|range\(1,\s*\w"
        r"|[\w)]\s*(<=|>=)\s*\w"
    )
    return [
        ln.number for _, ln, c in added_code(f) if rx.search(c) and not re.search(r"[+-]=\s*1\b", c)
    ]


# -- race ------------------------------------------------------------------------------


def scan_defaults_any(f: FileDiff) -> list[int]:
    rx = re.compile(
        r"^\s*(async\s+)?def\s+\w+\(.*\w\s*(:\s*[^=,)]+)?=\s*[^=]|^\s+\w+\s*:\s*[\w\[\]., |]+=\s*\S"
        r"|^[A-Z][A-Z0-9_]+\s*(:\s*\w+)?\s*=\s*\S|\.get\([^,()]+,\s*[^)]|getenv\([^,()]+,"
        r"|^\s+[A-Z]\w*:\s+[^,]+,\s*$|\bflag\.\w+\(|^\s*(const\s+)?\w+\s+=\s+\d|^const\s+\w+"
        r"|^\s+\w+=[^=,]+,?\s*$"
    )
    return [ln.number for _, ln, c in added_code(f) if rx.search(c)]


def scan_no_timeout(f: FileDiff) -> list[int]:
    lines = list(f.lines())
    hits = []
    for idx, ln, c in added_code(f):
        if re.search(r"\brequests\.(get|post|put|delete|patch|head|request)\(|\burlopen\(", c):
            if "timeout" not in call_text(lines, idx):
                hits.append(ln.number)
        elif re.search(r"timeout\s*=\s*None|Timeout:\s*0\b|\bnet\.Dial\(", c) or re.search(
            r"\bhttp\.Client\{\s*\}", c
        ):
            hits.append(ln.number)
        elif re.search(r"\bhttp\.(Client|Server)\{\s*$", c):
            literal = call_text(lines, idx)
            if "Timeout" not in literal:
                hits.append(ln.number)
    return hits


# -- hardcoded-secret ------------------------------------------------------------------

SECRET_NAME = (
    r"(password|passwd|secret|token|api_?key|apikey|access_?key|private_?key|signing_?key)"
)


def scan_secret_literal(f: FileDiff) -> list[int]:
    rx = re.compile(rf"""(?i)\b\w*{SECRET_NAME}\w*["']?\s*(:=|=|:)\s*["'`][^"'`\s]{{8,}}["'`]""")
    return [
        ln.number
        for _, ln, c in added_code(f)
        if rx.search(c) and not re.search(r"environ|getenv|Getenv|LookupEnv|<|\{", c)
    ]


# -- the broad scans and the one-pattern narrow ones ---------------------------------------

scan_exec_any = grep(EXEC)
scan_error_any = grep(ERROR_ANY.pattern)
scan_loop_any = grep(r"\bfor\b|\bwhile\b|\brange\(|\[[^\]]*:[^\]]*\]")
scan_mutable_default = grep(r"def\s+\w+\(.*=\s*(\[\]|\{\}|set\(\)|dict\(\)|list\(\))")
scan_insecure_default = grep(
    r"verify\s*=\s*False|InsecureSkipVerify:\s*true|CERT_NONE|_create_unverified_context"
    r"|check_hostname\s*=\s*False"
)
scan_debug_default = grep(r"(?i)\bdebug\w*\s*(:\s*bool)?\s*(=|:)\s*true\b")
scan_secret_any = grep(rf"(?i){SECRET_NAME}")


def scan_resource_any(f: FileDiff) -> list[int]:
    return [ln.number for _, ln, c in added_code(f) if ACQUIRE_ANY.search(c)]
