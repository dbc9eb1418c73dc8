"""Console configuration (``ORDERTAG_ENV``, ``ORDERTAG_CONSOLE_*``, over the shared settings)."""

from pydantic import Field, SecretStr, model_validator

from shared.settings import Settings

LOCAL_SESSION_SECRET = "ordertag-local-console-secret"  # noqa: S105  (local only; refused elsewhere)


class ConsoleSettings(Settings):
    # signs the session cookie; a random 32+ character string outside local
    console_session_secret: SecretStr = SecretStr(LOCAL_SESSION_SECRET)
    console_session_hours: float = Field(default=12, gt=0, le=24 * 30)
    # locally the sign-in page says which account to use; created on first start when missing
    console_local_user: str = "admin"
    console_local_password: SecretStr = SecretStr("ordertag-admin")
    # the live alerts page (the notifier's); unset: the notifier on this machine
    notifier_port: int = 8003
    console_alerts_url: str | None = None

    @model_validator(mode="after")
    def _secret_outside_local(self) -> "ConsoleSettings":
        secret = self.console_session_secret.get_secret_value()
        if self.env != "local" and (secret == LOCAL_SESSION_SECRET or len(secret) < 32):
            raise ValueError(
                "ORDERTAG_CONSOLE_SESSION_SECRET: set a random secret of 32+ characters "
                f"outside local (ORDERTAG_ENV={self.env})"
            )
        return self

    @property
    def alerts_url(self) -> str:
        return self.console_alerts_url or f"http://127.0.0.1:{self.notifier_port}/"

    @property
    def local(self) -> bool:
        return self.env == "local"
