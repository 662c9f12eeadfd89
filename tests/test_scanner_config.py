"""tasks.scanner_config: the scanner's .families.yaml from a scan template and VMCLARITY_SCANNER_* settings."""

import hashlib
import hmac

import pytest
import yaml

from scanner import config as scan_config
from scanner.config import ConfigError
from scanner.secrets import SecretsScanner
from scanner.walker import walk
from tasks.scanner_config import SCANNER_SETTINGS, fingerprint_key, scanner_config, scanner_settings

LOCAL = {"osv_db_path": "/data/osv", "exploitdb_csv_path": "/data/files_exploits.csv"}
HELPERS = {"vulndb_url": "http://vulndb:8081", "exploitdb_url": "http://exploitdb:1326"}


def parsed(document):
    """What the scanner makes of the document, after a YAML round trip."""
    return scan_config.parse(yaml.safe_load(yaml.safe_dump(document)))


def test_the_original_default_families_become_ours():
    # What the original UI sends for a new scan config.
    families = {
        "sbom": {"enabled": True, "analyzers": ["syft", "trivy"]},
        "vulnerabilities": {"enabled": True, "scanners": ["grype", "trivy"]},
        "exploits": {"enabled": True, "scanners": ["exploitdb"]},
        "secrets": {"enabled": False, "scanners": ["gitleaks"]},
    }
    document = scanner_config(families, LOCAL)
    assert document == {
        "sbom": {"enabled": True, "analyzers_list": ["syft", "native"]},
        "vulnerabilities": {"enabled": True, "scanners_list": ["osv"], "input_from_sbom": True,
                            "scanners_config": {"osv": {"db_path": "/data/osv"}}},
        "exploits": {"enabled": True, "scanners_list": ["exploitdb"], "input_from_vuln": True,
                     "scanners_config": {"exploit_db": {"csv_path": "/data/files_exploits.csv"}}},
    }
    families = parsed(document)
    assert families["sbom"].scanners == ("syft", "native")
    assert families["vulnerabilities"].scanner_config("osv") == {"db_path": "/data/osv"}
    assert families["vulnerabilities"].options == {"input_from_sbom": True}
    assert families["exploits"].options == {"input_from_vuln": True}


def test_empty_scanner_lists_mean_our_defaults():
    document = scanner_config({"sbom": {"enabled": True}, "vulnerabilities": {"enabled": True, "scanners": []},
                               "exploits": {"enabled": True, "scanners": None}}, HELPERS)
    families = parsed(document)
    assert families["sbom"].scanners == ("native",)
    assert families["vulnerabilities"].scanners == ("osv",)
    assert families["exploits"].scanners == ("exploitdb",)


def test_helper_addresses_and_local_data_go_where_the_scanner_reads_them():
    document = scanner_config({"vulnerabilities": {"enabled": True}, "exploits": {"enabled": True}},
                              {**LOCAL, **HELPERS})
    assert document["vulnerabilities"]["scanners_config"] == {
        "osv": {"db_path": "/data/osv", "server_url": "http://vulndb:8081"}}
    assert document["exploits"]["scanners_config"] == {
        "exploit_db": {"base_url": "http://exploitdb:1326", "csv_path": "/data/files_exploits.csv"}}
    parsed(document)


def test_a_family_without_its_data_still_goes_in():
    # The scanner then reports it Failed, naming the missing setting.
    document = scanner_config({"vulnerabilities": {"enabled": True}, "exploits": {"enabled": True}},
                              scanner_settings({}))
    assert document["vulnerabilities"]["scanners_config"] == {"osv": {}}
    assert document["exploits"]["scanners_config"] == {"exploit_db": {}}
    assert set(parsed(document)) == {"vulnerabilities", "exploits"}


def test_disabled_and_missing_families_are_left_out():
    assert scanner_config({}, LOCAL) == {}
    assert scanner_config(None, LOCAL) == {}
    assert scanner_config({"sbom": {"enabled": False}, "malware": None, "rootkits": {}}, LOCAL) == {}


def test_families_of_part_two_use_their_config_keys_and_settings(tmp_path):
    families = {
        "secrets": {"enabled": True, "scanners": ["gitleaks"]},
        "malware": {"enabled": True, "scanners": [], "yara_directories_to_scan": ["/home", "/tmp"]},
        "rootkits": {"enabled": True, "scanners": ["chkrootkit"]},
        "misconfigurations": {"enabled": True, "scanners": ["lynis"]},
        "infoFinder": {"enabled": True, "scanners": ["sshTopology"]},
    }
    settings = scanner_settings({
        "VMCLARITY_SCANNER_FRESHCLAM_MIRROR_URL": "http://freshclam:80/clamav",
        "VMCLARITY_SCANNER_YARA_RULES_URL": "http://yara:8080/",
        "VMCLARITY_SCANNER_CLAM_DATABASE_DIR": "/var/lib/clamav",
        "VMCLARITY_SCANNER_YARA_RULE_PATHS": "/rules/a.yar::/rules/more",
        "VMCLARITY_DATA_DIR": str(tmp_path),
    })
    document = scanner_config(families, settings)
    assert document == {
        "secrets": {"enabled": True, "scanners_list": ["secrets"],
                    "scanners_config": {"secrets": {"fingerprint_key": fingerprint_key(settings)}}},
        "malware": {"enabled": True, "scanners_list": ["clam", "yara"], "scanners_config": {
            "clam": {"database_dir": "/var/lib/clamav", "freshclam_mirror_url": "http://freshclam:80/clamav"},
            "yara": {"rule_paths": ["/rules/a.yar", "/rules/more"], "compiled_rule_url": "http://yara:8080/",
                     "directories_to_scan": ["/home", "/tmp"]},
        }},
        "rootkits": {"enabled": True, "scanners_list": ["chkrootkit"]},
        "misconfiguration": {"enabled": True, "scanners_list": ["lynis"]},
        "infofinder": {"enabled": True, "scanners_list": ["sshTopology"]},
    }
    # No list at all: the scanner picks its own default there (lynis is opt-in).
    assert "scanners_list" not in scanner_config({"misconfigurations": {"enabled": True}}, settings)[
        "misconfiguration"]
    # Every family key, scanner name and setting is one the scanner accepts; only a family
    # it cannot run yet may be refused, and then it says so.
    for key in document:
        try:
            parsed({key: document[key]})
        except ConfigError as error:
            assert f"{key}: this scanner does not provide the {key} family yet" in str(error)


def test_unknown_scanner_names_reach_the_scanner_which_names_its_own():
    document = scanner_config({"sbom": {"enabled": True, "analyzers": ["native", "cyclonedx-gomod"]}}, {})
    assert document["sbom"]["analyzers_list"] == ["native", "cyclonedx-gomod"]
    with pytest.raises(ConfigError, match="unknown scanner 'cyclonedx-gomod'.*available: native, syft"):
        parsed(document)


def test_an_original_scanner_we_do_not_have_is_a_note():
    # The original's default misconfiguration scanners: the control plane passes both through.
    document = scanner_config({"misconfigurations": {"enabled": True, "scanners": ["lynis", "cisdocker"]}}, {})
    assert document["misconfiguration"]["scanners_list"] == ["lynis", "cisdocker"]
    family = parsed(document)["misconfiguration"]
    assert (family.scanners, family.notes) == (("lynis",), ["cisdocker: not available in this scanner"])
    # Nothing else listed: the family runs its defaults, and says so.
    family = parsed({"misconfiguration": {"enabled": True, "scanners_list": ["cisdocker"]}})["misconfiguration"]
    assert (family.scanners, family.notes) == (("native",), ["cisdocker: not available in this scanner",
                                                             "ran native instead"])
    # A name the original never had is still an error.
    with pytest.raises(ConfigError, match="unknown scanner 'dockle'.*available: native, lynis"):
        parsed({"misconfiguration": {"enabled": True, "scanners_list": ["native", "dockle"]}})


def test_each_name_appears_once_in_its_order():
    document = scanner_config({"sbom": {"enabled": True, "analyzers": ["trivy", "windows", "syft", "gomod"]},
                               "vulnerabilities": {"enabled": True, "scanners": ["trivy", "grype", "osv"]}}, {})
    assert document["sbom"]["analyzers_list"] == ["native", "syft"]
    assert document["vulnerabilities"]["scanners_list"] == ["osv"]


def test_plugins_keep_the_original_keys():
    plugins = {"enabled": True, "scanners_list": ["kics"], "binary_mode": True,
               "scanners_config": {"kics": {"image_name": "ghcr.io/x/kics:1", "config": "{}"}}}
    assert scanner_config({"plugins": plugins}, {}) == {"plugins": plugins}


def test_settings_from_the_environment():
    assert scanner_settings({"VMCLARITY_DATA_DIR": "/d"}) == {
        "vulndb_url": "", "exploitdb_url": "", "freshclam_mirror_url": "", "yara_rules_url": "",
        "osv_db_path": "", "exploitdb_csv_path": "", "clam_database_dir": "", "yara_rule_paths": [],
        "secret_key": "", "data_dir": "/d",
    }
    settings = scanner_settings({"VMCLARITY_SCANNER_VULNDB_URL": "http://v:1", "VMCLARITY_SCANNER_OSV_DB_PATH": "/o",
                                 "VMCLARITY_OTHER": "x"})
    assert (settings["vulndb_url"], settings["osv_db_path"]) == ("http://v:1", "/o")
    assert all(name.startswith("VMCLARITY_SCANNER_") and len(value) == 2 and value[1]
               for name, value in SCANNER_SETTINGS.items())
    assert len(SCANNER_SETTINGS) == 8


def test_a_yara_rule_path_string_is_split_too():
    document = scanner_config({"malware": {"enabled": True}}, {"yara_rule_paths": "/a:/b"})
    assert document["malware"]["scanners_config"]["yara"] == {"rule_paths": ["/a", "/b"]}
    assert document["malware"]["scanners_config"]["clam"] == {}


# --- the secrets fingerprint key -------------------------------------------------------

#: A GitHub token (30 characters and their CRC32 in base62), planted in the scanned tree.
TOKEN = "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"


def secrets_scan(families_yaml, root):
    """The `secrets` scanner run as the scanner CLI would, with its settings from the document."""
    settings = parsed(families_yaml)["secrets"].scanner_config("secrets")
    scanner = SecretsScanner(str(root), settings)
    walk(str(root), scanner.visitors())
    return scanner.finish()


@pytest.fixture()
def planted(tmp_path):
    root = tmp_path / "asset"
    (root / "srv").mkdir(parents=True)
    (root / "srv" / "deploy.sh").write_text(f"export GITHUB_TOKEN={TOKEN}\n")
    return root


def document_for(environ):
    return scanner_config({"secrets": {"enabled": True, "scanners": ["gitleaks"]}}, scanner_settings(environ))


def test_scans_by_one_installation_share_a_fingerprint_key_and_others_differ(tmp_path, planted):
    one = {"VMCLARITY_DATA_DIR": str(tmp_path / "one")}
    first, second = document_for(one), document_for(one)  # the first made <data dir>/secret-key; both read it
    assert first == second
    assert (tmp_path / "one" / "secret-key").exists()
    prints = [[item["fingerprint"] for item in secrets_scan(document, planted).results] for document in (first, second)]
    assert prints[0] == prints[1] and len(prints[0]) == 1
    # Another installation (another data directory, so another secret): other fingerprints.
    other = secrets_scan(document_for({"VMCLARITY_DATA_DIR": str(tmp_path / "two")}), planted)
    assert [item["fingerprint"] for item in other.results] != prints[0]
    # Without the control plane's key the scanner uses its public default, and says so.
    default = secrets_scan({"secrets": {"enabled": True}}, planted)
    assert [item["fingerprint"] for item in default.results] not in prints
    assert any("public default key" in note for note in default.notes)
    assert not any("public default key" in note for note in other.notes)


def test_the_installation_secret_never_reaches_the_scanner(tmp_path, planted):
    secret = "installation-secret-Wm4Q9zT2"
    environ = {"VMCLARITY_SECRET_KEY": secret, "VMCLARITY_DATA_DIR": str(tmp_path / "data")}
    document = document_for(environ)
    key = document["secrets"]["scanners_config"]["secrets"]["fingerprint_key"]
    assert key == hmac.new(secret.encode(), b"secrets-fingerprint", hashlib.sha256).hexdigest()
    assert not (tmp_path / "data" / "secret-key").exists()  # the configured secret is used, none made
    result = secrets_scan(document, planted)
    assert len(result.results) == 1 and result.errors == []  # the token was found, and nothing failed
    for text in (yaml.safe_dump(document), repr(result)):
        assert secret not in text and secret.encode().hex() not in text
    assert key not in repr(result) and TOKEN[4:20] not in repr(result)
    assert document_for(environ) == document  # stable across scans
    assert document_for({**environ, "VMCLARITY_SECRET_KEY": secret + "x"}) != document


def test_no_installation_no_key():
    # A document made without the control plane's settings: the scanner falls back to its default.
    assert scanner_config({"secrets": {"enabled": True}}, {}) == {"secrets": {"enabled": True,
                                                                              "scanners_list": ["secrets"]}}
    assert fingerprint_key({}) == ""
