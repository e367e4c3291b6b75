"""CI: ``mlbuild stage``, the declared cycle and its Jenkinsfile, running a task, status."""


from mlbuild.ci.runner import RunOutcome, run_task
from mlbuild.ci.stages import StageResult, run_stage
from mlbuild.ci.status import pipeline_state

__all__ = [
    "RunOutcome",
    "StageResult",
    "pipeline_state",
    "run_stage",
    "run_task",
]
