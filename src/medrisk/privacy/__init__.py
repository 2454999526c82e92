"""Personal-information protection: third-party SDKs, the personal-information inventory,
the necessity check against the declared app type, and privacy-policy analysis.

``analyse.analyse_privacy`` produces the ``sdks`` and ``privacy`` roots of the indicator
document (docs/privacy.md); the PRIV-* rules read them.
"""
