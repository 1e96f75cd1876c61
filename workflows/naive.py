"""NaiveChainWorkflow: the comparison point for ``safety bench e2e``.

Four trivial no-op activities executed one after another as NORMAL (not local) activities on the
``bench-naive`` task queue: what a case would cost the Temporal server if every stage were its own
activity. The bench starts an in-process worker for it; nothing in production runs it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from workflows import contract

NAIVE_STEPS = 4


@activity.defn(name=contract.NOOP_ACTIVITY)
async def noop(step: int) -> int:
    return step


@workflow.defn(name=contract.NAIVE_CHAIN_WORKFLOW)
class NaiveChainWorkflow:
    @workflow.run
    async def run(self, steps: int = NAIVE_STEPS) -> int:
        done = 0
        for i in range(steps):
            await workflow.execute_activity(contract.NOOP_ACTIVITY, i, result_type=int,
                                            start_to_close_timeout=timedelta(seconds=30))
            done += 1
        return done


__all__ = ["NAIVE_STEPS", "NaiveChainWorkflow", "noop"]
