"""The Temporal time-skipping test server, started the same way by every test that needs it."""

from __future__ import annotations

from datetime import timedelta

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from ops.embedded import find_binary

# The SDK waits 5 s by default. On a 2-core CI machine busy with other tests the native test server
# sometimes needs longer to open its port (seen once in CI: "did not start within 5s").
STARTUP_TIMEOUT = timedelta(seconds=60)


async def start_time_skipping() -> WorkflowEnvironment:
    """The time-skipping server from the installed `temporal-test-server` binary (never downloaded)."""
    return await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(find_binary("temporal-test-server")),
        data_converter=pydantic_data_converter, test_server_startup_timeout=STARTUP_TIMEOUT)
