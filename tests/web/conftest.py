from tests.platform.fixtures import _fast_argon2, ctx, fresh_ctx, pg_server, scan_runner  # noqa: F401
