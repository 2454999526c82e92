"""Channel monitoring (white paper §1.2, §2.2, §4.2(1)(2); docs/channels.md).

Distribution channels are watched for copies of filed apps: ``adapters/`` fetch listings
(F-Droid repositories, JSON feeds, folders; plug-ins by entry point), ``fetch`` does HTTP with
conditional requests, resumable size-limited downloads and retries, ``match`` compares
listings with filings (pure: tampered, look-alike, version drift, stale vulnerable, unfiled),
and ``service`` runs crawls against the store and turns verdicts into closed-loop events.
"""
