"""Read the stages of a declarative Jenkinsfile, so `mlbuild ci` (`make ci`) runs the
same stages, in the same order, with the same commands as Jenkins.

Only what mlbuild needs is read: each ``stage('Name')``, its ``sh '...'`` steps, and
the two ``when`` conditions the reference Jenkinsfile uses — a branch, and whether the
run was started by the timer (the scheduled full accuracy tier).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlbuild.errors import ConfigError

STAGE = re.compile(r"""stage\s*\(\s*['"]([^'"]+)['"]\s*\)\s*\{""")
SH = re.compile(r"""\bsh\s*\(?\s*(['"])(.+?)\1""")
BRANCH = re.compile(r"""\bbranch\s+['"]([^'"]+)['"]""")


@dataclass(frozen=True)
class Stage:
    name: str
    commands: tuple[str, ...]
    branches: tuple[str, ...]     # only on these branches (empty: any)
    scheduled: bool | None        # True: only timer runs; False: never timer runs; None: both

    def runs(self, branch: str, scheduled: bool) -> bool:
        if self.branches and branch not in self.branches:
            return False
        return self.scheduled is None or self.scheduled == scheduled


def _block(text: str, start: int) -> str:
    """The text of the brace block that opens just before ``start``."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    raise ConfigError("The Jenkinsfile has an unbalanced brace.")


def _when(body: str) -> tuple[tuple[str, ...], bool | None]:
    match = re.search(r"\bwhen\s*\{", body)
    if not match:
        return (), None
    when = _block(body, match.end())
    scheduled = None
    if "triggeredBy" in when:
        scheduled = not re.search(r"not\s*\{\s*triggeredBy", when)
    return tuple(BRANCH.findall(when)), scheduled


def read(path: str | Path = "Jenkinsfile") -> list[Stage]:
    text = Path(path).read_text()
    text = re.sub(r"//[^\n]*", "", text)  # comments
    stages = []
    for match in STAGE.finditer(text):
        body = _block(text, match.end())
        branches, scheduled = _when(body)
        commands = tuple(command for _, command in SH.findall(body))
        stages.append(Stage(match.group(1), commands, branches, scheduled))
    if not stages:
        raise ConfigError(f"{path} declares no stage('…') blocks.")
    return stages
