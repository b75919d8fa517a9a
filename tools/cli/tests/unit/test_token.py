import pytest

from shopstream_cli.main import CliSettings, run
from shopstream_platform.grpc.auth import TokenCodec


def test_token_is_verifiable_by_the_services(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["token", "seller", "seller-42"]) == 0
    token = capsys.readouterr().out.strip()
    principal = TokenCodec(CliSettings().auth).verify(token)
    assert (principal.role, principal.id) == ("seller", "seller-42")


def test_unknown_role_is_refused() -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["token", "superuser", "x"])
    assert exit_info.value.code == 2
