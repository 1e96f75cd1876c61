"""Console tests: plain HTTP tests use the in-process app of tests/api; browser tests start their own stack."""

from tests.api.conftest import api, keys  # noqa: F401 - shared session fixtures
