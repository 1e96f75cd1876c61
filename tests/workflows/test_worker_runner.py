"""Deployed workers run workflows without the SDK sandbox (CPU), unless the setting turns it back on.
The workflow tests themselves use the sandbox, so non-deterministic workflow code still fails in CI."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from core.settings import Settings, WorkerSettings
from workers.registry import WorkerSpec, make_worker
from workflows.moderate import ModerateEventWorkflow


async def test_deployed_workers_run_unsandboxed_by_default(wf_client: Client, settings: Settings) -> None:
    assert Settings().worker.workflow_sandbox is False
    unsandboxed = make_worker(wf_client, WorkerSpec(queue="runner-check-off", workflows=[ModerateEventWorkflow]),
                              settings.model_copy(update={"worker": WorkerSettings()}))
    assert isinstance(unsandboxed.config()["workflow_runner"], UnsandboxedWorkflowRunner)
    sandboxed = make_worker(wf_client, WorkerSpec(queue="runner-check-on", workflows=[ModerateEventWorkflow]),
                            settings.model_copy(update={"worker": WorkerSettings(workflow_sandbox=True)}))
    assert isinstance(sandboxed.config()["workflow_runner"], SandboxedWorkflowRunner)
