"""The offline reviewer's detectors: line patterns over a diff's added lines.

Each detector belongs to one defect category and is switched on by checklist wording
(its cues, see :mod:`.wording`). Most categories have a *broad* detector, cued by the
plain name of a topic ("error handling", "database queries"), that flags every added
line touching that topic, and one or more *narrow* detectors, cued by wording that
names the mistake ("SQL built with string formatting"), that flag only lines showing
it. When one item cues both, the narrow ones replace the broad one. So a precise item
catches its defect, and a vague item fires on clean code too. The README lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import races, scans
from .scans import Scan
from .wording import Cue


@dataclass(frozen=True)
class Detector:
    id: str
    category: str
    cues: tuple[Cue, ...]
    narrower: tuple[str, ...]  # ids that replace this detector when the same item cues them
    message: str  # the finding's message
    flags: str  # what it flags, for the docs
    scan: Scan

    def cued_by(self, tokens: Sequence[str]) -> bool:
        return any(cue.matches(tokens) for cue in self.cues)


def _d(
    id: str,
    category: str,
    cues: tuple[str, ...],
    narrower: tuple[str, ...],
    message: str,
    flags: str,
    scan: Scan,
) -> Detector:
    return Detector(id, category, tuple(Cue.parse(c) for c in cues), narrower, message, flags, scan)


_NEGATION = "never|not|without|missing|no|forg*"

DETECTORS: tuple[Detector, ...] = (
    # sql-injection
    _d(
        "sql-any",
        "sql-injection",
        ("sql|database|query|queries|db",),
        ("sql-built-string",),
        "Database access: check how this query is built.",
        "every added line that calls execute/Query/Exec or holds SQL keywords in a string",
        scans.scan_sql_any,
    ),
    _d(
        "sql-built-string",
        "sql-injection",
        (
            "sql|query|queries|statement + format*|interpolat*|concatenat*|f string|sprintf"
            "|injection|string building|built from string*|user input",
        ),
        (),
        "SQL built by string formatting: pass values as query parameters.",
        "an SQL string built with an f-string, %, .format(), + or fmt.Sprintf",
        scans.scan_sql_built,
    ),
    # command-injection
    _d(
        "exec-any",
        "command-injection",
        ("command|commands|shell|subprocess|process|exec",),
        ("shell-string",),
        "Runs an external command: check its arguments.",
        "every added subprocess / os.system / exec.Command call",
        scans.scan_exec_any,
    ),
    _d(
        "shell-string",
        "command-injection",
        (
            "shell|command + interpolat*|format*|concatenat*|string*|user input|untrusted"
            "|injection|sprintf",
        ),
        (),
        "Shell command built from a string with outside input: pass an argument list.",
        "a shell (shell=True, os.system, sh -c) running a string built by formatting",
        scans.scan_shell_string,
    ),
    # unchecked-error
    _d(
        "error-any",
        "unchecked-error",
        ("error|errors|exception|exceptions|failure|failures",),
        ("err-discarded", "exception-swallowed", "returncode-ignored"),
        "Error handling: check this path.",
        "every added line that raises, catches, tests or discards an error",
        scans.scan_error_any,
    ),
    _d(
        "err-discarded",
        "unchecked-error",
        (
            "error|errors|err + ignor*|discard*|unchecked|not checked|never checked|blank"
            "|dropp*|unhandled|lost",
        ),
        (),
        "Error result discarded: check it and return or log it.",
        "Go: an error assigned to `_` or a call whose error result is dropped",
        scans.scan_err_discarded,
    ),
    _d(
        "exception-swallowed",
        "unchecked-error",
        (
            "exception*|except|error* + swallow*|silen*|pass|bare|catch all|broad|hid*|ignor*",
            "swallow*",
        ),
        (),
        "Exception swallowed silently: handle it, log it or let it propagate.",
        "Python: `except:` / `except Exception:` whose body only passes, continues or returns",
        scans.scan_swallowed,
    ),
    _d(
        "returncode-ignored",
        "unchecked-error",
        ("exit|return + code|status", "subprocess + check*|fail*|ignor*"),
        (),
        "Command's exit status is ignored: use check=True or test returncode.",
        "Python: a subprocess.run/call or os.system statement without check=True",
        scans.scan_returncode,
    ),
    # resource-leak
    _d(
        "resource-any",
        "resource-leak",
        ("resource*|cleanup|clean up|handle|handles|file|files|connection*",),
        ("never-closed",),
        "Acquires a resource: make sure it is released.",
        "every added line that opens a file, connection, socket, response or transaction",
        scans.scan_resource_any,
    ),
    _d(
        "never-closed",
        "resource-leak",
        (f"close*|releas*|clean* + {_NEGATION}", "leak*"),
        (),
        "Resource never closed: use with/defer to close it.",
        "a file, connection, response or rows opened into a name that is never closed, "
        "returned or handed over",
        scans.scan_never_closed,
    ),
    # off-by-one
    _d(
        "loop-any",
        "off-by-one",
        ("loop*|iteration*|index*|indices|slice*|bound|bounds",),
        ("len-bound", "boundary-arith"),
        "Loop or slice bounds: check the first and last index.",
        "every added for/while loop, range() and slice",
        scans.scan_loop_any,
    ),
    _d(
        "len-bound",
        "off-by-one",
        (
            "off by one|fencepost|out of range|out of bound*|index error|past the end",
            "len|length + bound*|end|past|last|beyond|one",
        ),
        (),
        "Off-by-one against len(): the last valid index is len - 1.",
        "`<= len(`, `range(len(x) - 1)`, `[len(x)]`, `len(x) + 1` as an index or bound",
        scans.scan_len_bound,
    ),
    _d(
        "boundary-arith",
        "off-by-one",
        (
            "boundar*|inclusive|exclusive|pagination|paging|page|pages|offset*|plus one"
            "|minus one|range end",
        ),
        (),
        "Boundary arithmetic: check the +1/-1 and the comparison.",
        "added lines with ±1 arithmetic, `page *`, `range(1, ...)` or a <= / >= comparison",
        scans.scan_boundary_arith,
    ),
    # race
    _d(
        "concurrency-any",
        "race",
        ("concurren*|thread*|goroutine*|parallel*|race*|async*|worker*",),
        ("unlocked-write",),
        "Shared state in concurrent code: check it is synchronized.",
        "every added mutation (+=, ++, item assignment, append) in a file that starts "
        "threads or goroutines",
        races.scan_concurrency_any,
    ),
    _d(
        "unlocked-write",
        "race",
        (
            "lock*|mutex*|synchroniz*|unsynchroniz*|unguard*|atomic* + shared|global|without"
            "|missing|not|no|counter*|map*|state|writ*|mutat*|held|holding",
            "data race*",
        ),
        (),
        "Shared state written from concurrent code without holding a lock.",
        "a mutation of shared state inside a goroutine or thread target, not under a lock",
        races.scan_unlocked_write,
    ),
    # wrong-default
    _d(
        "defaults-any",
        "wrong-default",
        ("default*|config*|setting*|option*|parameter*",),
        ("mutable-default", "no-timeout", "insecure-default", "debug-default"),
        "Default value: check it is safe for production.",
        "every added parameter default, settings field, constant, flag or fallback value",
        scans.scan_defaults_any,
    ),
    _d(
        "mutable-default",
        "wrong-default",
        ("mutable + default*|argument*|parameter*|list|dict", "shared default*"),
        (),
        "Mutable default argument is shared between calls: default to None.",
        "Python: a parameter defaulting to [], {}, set(), list() or dict()",
        scans.scan_mutable_default,
    ),
    _d(
        "no-timeout",
        "wrong-default",
        ("timeout*|deadline*|hang*|time out",),
        (),
        "No timeout: a slow peer blocks this call forever.",
        "requests/urlopen calls without timeout=, timeout=None, an http.Client or "
        "http.Server without timeouts, net.Dial",
        scans.scan_no_timeout,
    ),
    _d(
        "insecure-default",
        "wrong-default",
        ("tls|ssl|certificat*|verif*|insecure*|https",),
        (),
        "TLS verification disabled.",
        "verify=False, InsecureSkipVerify: true, CERT_NONE, unverified SSL contexts",
        scans.scan_insecure_default,
    ),
    _d(
        "debug-default",
        "wrong-default",
        ("debug*",),
        (),
        "Debug mode on by default.",
        "debug=True / DEBUG = True / Debug: true as a default",
        scans.scan_debug_default,
    ),
    # hardcoded-secret
    _d(
        "secret-any",
        "hardcoded-secret",
        ("secret*|credential*|password*|token*|api key*|apikey|key|keys",),
        ("secret-literal",),
        "Credential handling: check where this value comes from.",
        "every added line naming a password, secret, token or API key",
        scans.scan_secret_any,
    ),
    _d(
        "secret-literal",
        "hardcoded-secret",
        (
            "hardcod*|hard cod*|literal*|plain text|plaintext|source|committed|embedded"
            "|inline|in code + secret*|credential*|password*|key|keys|token*",
        ),
        (),
        "Secret written in the source: load it from the environment or a secret store.",
        "a password/secret/token/key name assigned a string literal of 8+ characters",
        scans.scan_secret_literal,
    ),
)

BY_ID = {d.id: d for d in DETECTORS}
