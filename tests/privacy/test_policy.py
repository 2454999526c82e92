"""Policy reading and the verdict of every check on the four fixture policies."""

from __future__ import annotations

import pytest

from medrisk.privacy.analyse import analyse_privacy
from medrisk.privacy.policy import Reader, choose_policy, decode, detect_language, html_to_text, is_policy_candidate

from .helpers import consultation_app, doc, perm, read


def checks(result):
    return {c["id"]: c for c in result["privacy"]["policy"]["checks"]}


def verdicts(result):
    return {k: v["verdict"] for k, v in checks(result).items()}


@pytest.fixture(scope="module")
def app():
    return consultation_app()


# --------------------------------------------------------------------------- text handling


def test_html_to_text_drops_scripts_and_keeps_blocks():
    text = html_to_text(read("policy_complete.html"))
    assert "trackPolicyView" not in text and "font-size" not in text
    assert "一、我们如何收集和使用您的个人信息" in text.splitlines()
    assert "个推推送SDK" in text.splitlines()  # table cells become lines


def test_plain_text_passes_through():
    assert html_to_text("第一行\n第二行 <b>不是标签") == "第一行\n第二行 <b>不是标签"


def test_decode_common_encodings():
    s = "隐私政策：我们收集您的手机号码。"
    assert decode(s.encode("utf-8")) == s
    assert decode(b"\xef\xbb\xbf" + s.encode("utf-8")) == s
    assert decode(s.encode("gb18030")) == s
    assert decode(s.encode("utf-16")) == s


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("我们收集您的个人信息，用于提供服务。" * 3, "zh"),
        ("We collect personal information to provide the service.", "en"),
        ("1234 5678 ----", "other"),
        ("", None),
        ("Privacy 隐私政策 我们如何收集您的个人信息", "zh"),
    ],
)
def test_detect_language(text, lang):
    assert detect_language(text) == lang


def test_shadow_words_do_not_count():
    r = Reader("我们将向您发送短信验证码。请填写紧急联系人的姓名。")
    assert r.mention(["短信"]) == (None, False)
    assert r.mention(["联系人"]) == (None, False)
    r = Reader("为自动填写验证码，我们会读取您的短信。")
    assert r.mention(["短信"])[0].startswith("为自动填写验证码")


def test_latin_terms_need_word_boundaries():
    r = Reader("Our Macau office handles machine data.")
    assert r.mention(["MAC"]) == (None, False)
    assert Reader("我们收集MAC地址。").mention(["MAC"])[0] == "我们收集MAC地址。"


def test_negation_is_a_denial_not_a_disclosure():
    r = Reader("我们不会收集您的通讯录。")
    sentence, denied = r.mention(["通讯录"])
    assert denied and sentence == "我们不会收集您的通讯录。"
    r = Reader("我们不会收集您的通讯录。在您邀请好友时，我们会在征得同意后读取通讯录。")
    assert r.mention(["通讯录"]) == ("在您邀请好友时，我们会在征得同意后读取通讯录。", False)
    assert Reader("We do not collect your contacts.").mention(["contacts"])[1] is True


def test_negation_stays_in_its_clause():
    r = Reader("我们不会出售您的信息，但会收集位置信息用于推荐附近医院。")
    assert r.mention(["位置"])[1] is False


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("assets/privacy.html", True),
        ("assets/web/隐私政策.htm", True),
        ("res/raw/user_agreement.txt", True),
        ("assets/yinsi_xieyi.html", True),
        ("assets/index.html", False),
        ("assets/privacy.js", False),
        ("res/layout/privacy.xml", False),
    ],
)
def test_policy_candidate_paths(path, ok):
    assert is_policy_candidate(path) is ok


def test_choose_policy_prefers_privacy_content():
    assets = {
        "assets/user_agreement.html": "<p>用户服务协议：您应遵守法律法规。</p>",
        "assets/web/privacy.html": read("policy_complete.html"),
        "assets/about.txt": "关于我们",
    }
    path, text = choose_policy(assets)
    assert path == "assets/web/privacy.html" and "安康问诊隐私政策" in text
    assert choose_policy({"assets/agreement.html": "<p>用户协议</p>"}) is None
    assert choose_policy({}) is None and choose_policy(None) is None


# --------------------------------------------------------------------------- verdicts on the fixtures


def test_complete_policy_passes_every_check(app):
    r = analyse_privacy(
        app, policy_text=read("policy_complete.html"), policy_source="policy.html", app_type="问诊挂号类"
    )
    pol = r["privacy"]["policy"]
    assert pol["present"] and pol["language"] == "zh" and pol["source"] == "policy.html"
    v = verdicts(r)
    assert set(v.values()) == {"pass"}, {k: x for k, x in v.items() if x != "pass"}
    c = checks(r)
    assert "撤回您的授权同意" in c["withdraw_consent"]["evidence"]
    assert "删除您的个人信息" in c["deletion"]["evidence"]
    assert "注销账号" in c["account_cancellation"]["evidence"]
    assert "400-123-4567" in c["complaint"]["evidence"]
    assert "单独征得您的同意" in c["sensitive_consent"]["evidence"]
    assert "15年" in c["retention"]["evidence"]
    assert all(d["disclosed"] for d in pol["sdk_disclosures"])
    assert {d["sdk"] for d in pol["sdk_disclosures"]} == {
        "getui",
        "tencent_bugly",
        "amap_location",
        "wechat_opensdk",
        "alipay_sdk",
    }
    assert all(d["disclosed"] and d["evidence"] for d in pol["disclosures"])


def test_policy_without_sdk_list(app):
    r = analyse_privacy(app, policy_text=read("policy_no_sdk_list.txt"), app_type="问诊挂号类")
    v = verdicts(r)
    assert v["sdk_list"] == "fail" and v["sdks_disclosed"] == "fail"
    assert checks(r)["sdk_list"]["evidence"] is None
    assert "个推推送 SDK" in checks(r)["sdks_disclosed"]["detail"]["zh"]
    for cid in ("collection_rules", "withdraw_consent", "correction", "deletion", "account_cancellation", "complaint",
                "retention", "contact", "sensitive_consent", "update_notice", "language_zh"):  # fmt: skip
        assert v[cid] == "pass", cid
    assert v["permissions_disclosed"] == "fail"  # location and camera are never mentioned
    assert v["minors"] == "fail"


def test_policy_without_deletion_channel(app):
    r = analyse_privacy(app, policy_text=read("policy_no_deletion.txt"), app_type="问诊挂号类")
    v = verdicts(r)
    assert v["deletion"] == "fail" and v["account_cancellation"] == "fail"
    assert v["correction"] == "pass" and v["withdraw_consent"] == "pass" and v["complaint"] == "pass"
    assert v["sdk_list"] == "pass"
    # it lists Umeng and JPush, but this app embeds Getui, Bugly, AMap, WeChat and Alipay
    assert v["sdks_disclosed"] == "fail"
    assert "service@tangyou-example.cn" in checks(r)["contact"]["evidence"]


ENGLISH_PASS = (
    "collection_rules", "sdk_list", "sdks_disclosed", "withdraw_consent", "correction", "deletion",
    "account_cancellation", "complaint", "retention", "contact", "sensitive_consent", "update_notice",
)  # fmt: skip


def test_english_only_policy(app):
    r = analyse_privacy(app, policy_text=read("policy_english.html"), app_type="问诊挂号类")
    v = verdicts(r)
    assert r["privacy"]["policy"]["language"] == "en"
    assert v["language_zh"] == "fail"
    for cid in ENGLISH_PASS:
        assert v[cid] == "pass", cid
    assert v["minors"] == "fail"


def test_no_policy_only_fails_presence(app):
    r = analyse_privacy(app, policy_text=None, app_type="问诊挂号类")
    v = verdicts(r)
    assert v.pop("present") == "fail"
    assert set(v.values()) == {"not_applicable"}
    assert r["privacy"]["policy"]["disclosures"] == [] and r["privacy"]["policy"]["source"] is None


def test_policy_that_denies_what_the_app_does():
    d = doc(manifest={"permissions": [perm("android.permission.READ_CONTACTS")]})
    text = "隐私政策\n我们收集您的手机号码，用于账号注册。我们不会收集您的通讯录。"
    r = analyse_privacy(d, policy_text=text)
    (row,) = r["privacy"]["policy"]["disclosures"]
    assert row["item"] == "contacts" and row["denied"] and not row["disclosed"] and row["permission"]
    assert "政策声称不收集" in checks(r)["permissions_disclosed"]["detail"]["zh"]


def test_sensitive_check_not_applicable_without_sensitive_items():
    d = doc(manifest={"permissions": [perm("android.permission.CAMERA")]})
    r = analyse_privacy(
        d, policy_text="隐私政策\n为扫码问诊，我们会申请相机权限，用于拍摄检查报告。", app_type="运动健身类"
    )
    assert verdicts(r)["sensitive_consent"] == "not_applicable"
    assert verdicts(r)["sdk_list"] == "not_applicable"


def test_hardening_shell_needs_no_disclosure():
    d = doc(manifest={"application_class": "com.stub.StubApp"})
    r = analyse_privacy(d, policy_text="隐私政策\n为提供服务，我们收集您的手机号码，用于登录。")
    (row,) = r["privacy"]["policy"]["sdk_disclosures"]
    assert row["sdk"] == "jiagu_360" and row["required"] is False
    assert verdicts(r)["sdks_disclosed"] == "not_applicable"
