"""Credentials of a tracking server bound beyond loopback (MLflow's basic-auth app).

A server that jobs on other nodes reach (``tracking.server_host: 0.0.0.0``) would otherwise let anyone on the
cluster network read, change or delete every run of the study. Such a server runs MLflow's basic-auth app with
one admin user; its password and the app's Flask secret are generated once per runs folder and kept in
``<runs_dir>/mlflow-auth/credentials.json`` (mode 0600, in a 0700 folder, beside the app's user store). The server
receives them through its environment, never on its command line. A sweep driver that uses the server puts the
username and password into its own environment (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, read
by MLflow's client), from which its jobs inherit them (submitit's local jobs as child processes, SLURM jobs by
sbatch's default ``--export=ALL``). Nothing here prints or logs a secret. A loopback server stays credential-free.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

AUTH_DIR = "mlflow-auth"
CREDENTIALS_FILE = "credentials.json"
USERS_DB = "users.db"
CONFIG_FILE = "basic_auth.ini"
USERNAME = "seedfold"
CLIENT_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


class CredentialsError(HarnessError):
    """The runs folder's tracking credentials are unreadable, malformed or readable by others."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    secret_key: str  # the basic-auth app's Flask secret (CSRF of its sign-up page)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1): only this machine reaches them."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: reachable from wherever it resolves


def auth_dir(runs_dir: str | Path) -> Path:
    return Path(runs_dir).resolve() / AUTH_DIR


def credentials(runs_dir: str | Path, *, create: bool = True) -> Credentials | None:
    """The runs folder's credentials, generated on first use (``create``); None when there are none and
    ``create`` is False. New credentials start a new user store (the old one knows another password)."""
    folder = auth_dir(runs_dir)
    path = folder / CREDENTIALS_FILE
    if not path.exists():
        if not create:
            return None
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        new = Credentials(USERNAME, secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another driver created them first: read theirs
        else:
            (folder / USERS_DB).unlink(missing_ok=True)
            with os.fdopen(fd, "w") as f:
                json.dump(new.__dict__, f)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise CredentialsError(f"{path}: readable by others (mode {mode:o}); `chmod 600 {path}` (and consider "
                               "the password seen: delete the file to generate new ones)")
    try:
        raw = json.loads(path.read_text())
        return Credentials(str(raw["username"]), str(raw["password"]), str(raw["secret_key"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CredentialsError(f"{path}: not a credentials file ({type(exc).__name__}); delete it to generate "
                               "new ones") from None


def server_env(runs_dir: str | Path) -> dict[str, str]:
    """Environment of ``mlflow server --app-name basic-auth`` for this runs folder: the app's configuration file
    (user store in the auth folder; users other than the admin get no permission) and the admin's credentials."""
    creds = credentials(runs_dir)
    folder = auth_dir(runs_dir)
    config = folder / CONFIG_FILE
    text = ("[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
            f"database_uri = sqlite:///{folder / USERS_DB}\n"
            f"admin_username = {creds.username}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return {"MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_AUTH_ADMIN_USERNAME": creds.username,
            "MLFLOW_AUTH_ADMIN_PASSWORD": creds.password, "MLFLOW_FLASK_SERVER_SECRET_KEY": creds.secret_key}


def client_env(runs_dir: str | Path) -> dict[str, str]:
    """The variables MLflow's client authenticates with, for this runs folder's server ({} without credentials)."""
    creds = credentials(runs_dir, create=False)
    return {} if creds is None else dict(zip(CLIENT_VARS, (creds.username, creds.password), strict=True))


def use_credentials(runs_dir: str | Path) -> bool:
    """Put this runs folder's client credentials into this process's environment, for its own MLflow clients and
    the jobs it starts. False (and nothing changed) when the folder has none."""
    env = client_env(runs_dir)
    os.environ.update(env)
    return bool(env)
