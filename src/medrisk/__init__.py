"""MedRisk: security-risk monitoring and control for mobile medical and health apps."""

__version__ = "0.1.0"
