"""The trial store: SDTM-shaped tables, Alembic migrations, audit trail, import and export.

Python API (see docs/store.md)::

    from celltrial.store import init_db, open_store, register_study, write_domains, read_domains
    init_db(url)                       # alembic upgrade head
    store = open_store(url)
    register_study(store, protocol)
    write_domains(store, "cd7-zz-phase1", {"DM": dm, "AE": ae}, user="jdoe", reason="entry")
    domains = read_domains(store, "cd7-zz-phase1")   # {"DM": DataFrame, ...}
"""

from celltrial.store.audit import AuditCheck, audit_trail, verify_audit
from celltrial.store.domains import DOMAINS, Domain, Variable, domain_of
from celltrial.store.engine import Store, init_db, open_store, write_transaction
from celltrial.store.records import (
    StaleRecord,
    WriteSummary,
    count_records,
    delete_record,
    read_domain,
    read_domains,
    update_record,
    void_record,
    write_domains,
)
from celltrial.store.studies import StudyInfo, add_site, get_study, list_studies, register_study
from celltrial.store.entry import Written, write_record
from celltrial.store.csv_files import export_csv_dir, import_csv_dir, read_csv_dir
from celltrial.store.dataset_json import export_dataset_json, read_dataset_json_dir
from celltrial.store.xpt import export_xpt, read_xpt_dir
from celltrial.store.users import UserInfo, add_user, get_user, verify_password

__all__ = [
    "DOMAINS", "AuditCheck", "Domain", "StaleRecord", "Store", "StudyInfo", "UserInfo",
    "Variable", "WriteSummary", "Written",
    "add_site", "add_user", "audit_trail", "count_records", "delete_record", "domain_of",
    "export_csv_dir", "export_dataset_json", "export_xpt", "get_study", "get_user",
    "import_csv_dir", "init_db", "list_studies", "open_store", "read_csv_dir",
    "read_dataset_json_dir", "read_domain", "read_domains", "read_xpt_dir", "register_study",
    "update_record", "verify_audit", "verify_password", "void_record", "write_domains",
    "write_record", "write_transaction",
]
