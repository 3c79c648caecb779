"""Where a server is, said without its secrets: for messages and logs."""

from __future__ import annotations

from urllib.parse import urlsplit


def safe_url(url: str) -> str:
    """Where a server (a database, an LLM endpoint) is, without its user, password or options: a URL without
    them, and a PostgreSQL key=value connection string ("host=db password=…") as such a URL."""
    if "://" in url:
        try:
            parts = urlsplit(url)
        except ValueError:
            return "(a URL that does not parse)"
        hosts = parts.netloc.rpartition("@")[2]  # "h1:5432,h2:5432" for failover: .port cannot parse it
        return parts._replace(netloc=hosts, query="").geturl()
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except ProgrammingError:
        return "(a connection string that does not parse)"
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{params.get('host', '')}{port}/{params.get('dbname', '')}"
