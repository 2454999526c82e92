"""Shared builders for privacy tests: small indicator documents written by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medrisk.analysis import skeleton

FIXTURES = Path(__file__).parent / "fixtures"


def loc(cls: str, method: str = "m()V", line: int | None = None) -> dict[str, Any]:
    return {"file": "classes.dex", "class": cls, "method": method, "line": line}


def perm(name: str, level: str = "dangerous") -> dict[str, Any]:
    return {"name": name, "protection_level": level, "max_sdk": None}


def doc(**roots: Any) -> dict[str, Any]:
    return skeleton.complete(roots)


def consultation_app() -> dict[str, Any]:
    """An online-consultation app whose facts match tests/privacy/fixtures/policy_complete.html."""
    return doc(
        manifest={
            "package": "cn.example.ankang",
            "permissions": [
                perm("android.permission.INTERNET", "normal"),
                perm("android.permission.CAMERA"),
                perm("android.permission.RECORD_AUDIO"),
                perm("android.permission.ACCESS_FINE_LOCATION"),
                perm("android.permission.READ_EXTERNAL_STORAGE"),
            ],
        },
        code={
            "packages": [
                "cn.example.ankang",
                "cn.example.ankang.ui",
                "com.igexin.sdk",
                "com.igexin.push.core",
                "com.tencent.bugly.crashreport",
                "com.amap.api.location",
                "com.tencent.mm.opensdk.openapi",
                "com.alipay.sdk.app",
            ],
            "calls": [
                {
                    "api": "android.provider.Settings$Secure.getString",
                    "args": [None, "android_id"],
                    "location": loc("cn.example.ankang.Device", "id()Ljava/lang/String;", 21),
                },
                {
                    "api": "android.location.LocationManager.requestLocationUpdates",
                    "args": ["gps"],
                    "location": loc("cn.example.ankang.ui.NearbyActivity", "onResume()V", 40),
                },
            ],
        },
    )


def read(name: str) -> str:
    from medrisk.privacy.policy import load_policy_file

    return load_policy_file(FIXTURES / name)
