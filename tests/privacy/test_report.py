"""Privacy section of the table and HTML reports."""

from __future__ import annotations

from medrisk.privacy.analyse import analyse_privacy
from medrisk.reports.privacy import html_section, table_lines

from .helpers import consultation_app, doc, read


def result():
    d = consultation_app()
    d["code"]["packages"].append("com.qq.e.ads")
    d["strings"]["domains"] = ["a.tiles.mapbox.com"]
    return {
        "indicators": {**d, **analyse_privacy(d, policy_text=read("policy_no_sdk_list.txt"), app_type="问诊挂号类")}
    }


def test_table_is_chinese_by_default():
    lines = table_lines(result())
    text = "\n".join(lines)
    assert lines[0].startswith("个人信息保护") and "问诊挂号类" in lines[0]
    assert "签名库版本 2026" in text
    assert "优量汇（腾讯广告）SDK [广告]" in text
    assert "仅发现域名，未确认 SDK 代码" in text  # Mapbox domain only
    assert "个人信息清单" in text and "位置信息 [敏感]" in text
    where = "cn.example.ankang.ui.NearbyActivity onResume()V:40"
    assert f"代码: android.location.LocationManager.requestLocationUpdates @ {where}" in text
    assert "[不通过] 列明嵌入的第三方 SDK PRIV-004" in text
    assert "依据: 《App违法违规收集使用个人信息行为认定方法》二.1" in text
    assert "超出必要范围" in text


def test_table_in_english():
    text = "\n".join(table_lines(result(), "en"))
    assert "Personal-information protection" in text and "个人信息保护" not in text.splitlines()[0]
    assert "[fail] Lists the embedded third-party SDKs PRIV-004" in text
    assert "Tencent GDT ads (Youlianghui) [Advertising]" in text
    assert "Location [sensitive]" in text


def test_accepts_bare_document_and_missing_privacy():
    d = consultation_app()
    bare = {**d, **analyse_privacy(d)}
    assert table_lines(bare)[0].startswith("个人信息保护")
    assert table_lines({"indicators": doc()}) != []  # default (empty) privacy root renders
    assert table_lines({"indicators": {"manifest": {}}}) == [] and html_section({}) == ""


def test_html_escapes_everything():
    d = consultation_app()
    d["manifest"]["components"] = [
        {"type": "receiver", "name": "com.x.<script>alert(1)</script>",
         "intent_filters": [{"actions": ["android.provider.Telephony.SMS_RECEIVED"]}]}
    ]  # fmt: skip
    d["code"]["calls"].append(
        {"api": "android.telephony.TelephonyManager.getImei", "args": [],
         "location": {"file": "classes.dex", "class": "a.<img src=x onerror=alert(2)>", "method": "m()V", "line": 1}}
    )  # fmt: skip
    policy = "<p>隐私政策</p><p>我们收集您的手机号码<script>alert(3)</script>，用于&lt;b&gt;登录&lt;/b&gt;。</p>"
    r = analyse_privacy(d, policy_text=policy, policy_source="<i>p.html</i>", app_type="问诊挂号类")
    html = html_section({"indicators": {**d, **r}})
    assert "<script>" not in html and "<img" not in html and "<i>p.html" not in html and "<b>登录" not in html
    assert "&lt;script&gt;alert(1)" in html and "&lt;img src=x" in html
    assert html.startswith("<section class='privacy'>") and html.endswith("</section>")
    assert "合规检查清单" in html and "收集的个人信息" in html


def test_html_english():
    html = html_section(result(), "en")
    assert "Compliance checklist" in html and "Third-party SDKs" in html and "合规检查清单" not in html
