"""The platform's domain logic: organisations, users and roles, authentication, audit,
filings and authorisation codes, versions and scans. No HTTP here: ``medrisk.web`` and
``medrisk.platform_cli`` call these functions, and workers run the same scan code.
"""
