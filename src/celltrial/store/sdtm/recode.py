"""How the store's values are written as CDISC Controlled Terminology, declared as data.

The store keeps the vocabulary of docs/data-model.md (the one the derivations, the web forms
and the virtual-patient generator speak). The SDTM export writes CDISC CT submission values
instead; the import reads them back to the store's canonical value. Each :class:`Recode`
gives both directions: ``out`` (store value -> CT value; several store spellings may map to
one CT value) and ``back`` (CT value -> the store's canonical value). Values absent from a map
pass unchanged (they are CT already, or a declared sponsor extension).

Sources (CT release in :mod:`celltrial.store.sdtm.ct`):

- cytokines: CDISC LBTESTCD ``INTLK6`` (C74834), ``INTLK10`` (C74806), ``TNF`` (C74751, synonym
  "Tumor Necrosis Factor alpha"); ``IFNG`` is CT already. Corrected calcium is ``CACRALB``
  (C154753, "Calcium Corrected for Albumin").
- units: CDISC UNIT lists ``pg/mL`` as a synonym of the submission value ``ng/L`` (C67327,
  numerically equal), ``/uL`` and ``cells/uL`` as synonyms of ``10^6/L`` (C67452, equal),
  ``fraction of 1`` (C105484), ``copies/ug`` (C126079), ``YEARS`` (C29848).
- response (ONCRSR): ``MLFS`` is ``MORPHOLOGIC LEUKEMIA-FREE STATE`` (C123597), relapse after
  remission is ``RELAPSED DISEASE`` (C38155); ONCRTSCD: marrow response ``BMRRESP``
  (C173307), extramedullary response ``EMDRESP`` (C204685).
- tumour results: the short-axis diameter is TRTESTCD ``LPERP`` (C96685, synonym "Short Axis
  Diameter").
- immunogenicity: an anti-CAR antibody is a binding anti-drug antibody, ISTESTCD ``ADA_BAB``
  (C147272).
- methods: flow cytometry ``FLOW CYTOMETRY`` (C16585), marrow morphology ``MICROSCOPY``
  (C16853), qPCR ``REAL-TIME POLYMERASE CHAIN REACTION ASSAY`` (C51962).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Recode:
    """Store value <-> CT submission value for one kind of variable."""

    out: dict[str, str]
    back: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.back:
            inverse: dict[str, str] = {}
            for store, ct in self.out.items():
                if ct in inverse:
                    raise ValueError(f"{ct!r} has two store values; declare `back`")
                inverse[ct] = store
            object.__setattr__(self, "back", inverse)

    def to_ct(self, value: Any) -> Any:
        """The CT value of a store value (unchanged when not mapped)."""
        return self.out.get(value, value) if isinstance(value, str) else value

    def to_store(self, value: Any) -> Any:
        """The store's canonical value of a CT value (unchanged when not mapped)."""
        return self.back.get(value, value) if isinstance(value, str) else value


UNITS = Recode(
    out={"pg/mL": "ng/L", "cells/uL": "10^6/L", "/uL": "10^6/L", "fraction": "fraction of 1",
         "copies/ug gDNA": "copies/ug", "years": "YEARS"},
    back={"ng/L": "pg/mL", "10^6/L": "cells/uL", "fraction of 1": "fraction",
          "copies/ug": "copies/ug gDNA", "YEARS": "years"},
)
"""Units of --ORRESU/--STRESU (and SCORRESU). AGEU keeps ``YEARS`` (CT AGEU) unmapped."""

LBTESTCD = Recode(out={"IL6": "INTLK6", "IL10": "INTLK10", "TNFA": "TNF", "CACORR": "CACRALB"})
LBTEST = Recode(out={"Tumor Necrosis Factor Alpha": "Tumor Necrosis Factor"})
"""LBTEST is written as the CT name of the test code; ``back`` names the store's own wording
where it differs (the generator's table in celltrial.kinetics.virtual)."""
RSTESTCD = Recode(out={"MARROW": "BMRRESP", "EMRESP": "EMDRESP"})
RSSTRESC = Recode(out={"MLFS": "MORPHOLOGIC LEUKEMIA-FREE STATE", "RELAPSE": "RELAPSED DISEASE"})
TRTESTCD = Recode(out={"SDIAM": "LPERP"})
ISTESTCD = Recode(out={"ADACAR": "ADA_BAB"})
METHOD = Recode(out={"FLOW": "FLOW CYTOMETRY", "MORPHOLOGY": "MICROSCOPY",
                     "QPCR": "REAL-TIME POLYMERASE CHAIN REACTION ASSAY"})

SC_TESTS: dict[str, tuple[str, str]] = {
    "age_years": ("AGESCR", "Age at Screening"),
    "ecog": ("ECOG", "ECOG Performance Status"),
    "cd7_blast_pct": ("CD7BLPCT", "CD7+ Blasts/Blasts by Flow Cytometry"),
    "lvef": ("LVEF", "Left Ventricular Ejection Fraction"),
    "nyha_class": ("NYHACLS", "NYHA Class"),
    "ast_x_uln": ("ASTXULN", "AST as Multiple of ULN"),
    "alt_x_uln": ("ALTXULN", "ALT as Multiple of ULN"),
    "bilirubin_mg_dl": ("BILI", "Total Bilirubin"),
    "diagnosis": ("DIAGNOS", "Diagnosis"),
    "weight_kg": ("WEIGHT", "Body Weight"),
    "relapsed_refractory": ("RRDIS", "Relapsed or Refractory Disease"),
    "pregnant_or_lactating": ("PREGLACT", "Pregnant or Lactating"),
    "congenital_immunodeficiency": ("CONGIMDF", "Congenital Immunodeficiency"),
    "cns_leukemia": ("CNSLEUK", "Central Nervous System Leukemia"),
    "uncontrolled_infection": ("UNCTINF", "Uncontrolled Active Infection"),
    "active_hbv_hcv": ("HBVHCV", "Active Hepatitis B or C Infection"),
    "hiv_infection": ("HIV", "HIV Infection"),
    "thrombosis_embolism": ("THROMEMB", "Thrombosis or Embolism"),
    "recent_mi_or_arrhythmia": ("MIARRHY", "Recent MI or Severe Arrhythmia"),
    "investigator_unsuitable": ("INVUNSUI", "Unsuitable per Investigator"),
}
"""Protocol eligibility variables (celltrial.protocols.STANDARD_VARIABLES) -> sponsor-defined
SCTESTCD (<= 8 characters, upper case, SDTMIG 3.4 section 4.5.3.1) and SCTEST (<= 40); the
SCTESTCD codelist (C74559) is extensible and holds none of these tests."""

SCTESTCD = Recode(out={k: v[0] for k, v in SC_TESTS.items()})

XC_TESTS: dict[str, tuple[str, str, str | None]] = {
    "XCTEMP": ("TEMP", "Temperature", "C"),
    "XCFEVMSK": ("FEVMSK", "Fever Masked by Antipyretics/Cytokine Tx", None),
    "XCHYPOT": ("HYPOT", "Hypotension Management", None),
    "XCOXY": ("OXY", "Oxygen Support", None),
    "XCICE": ("ICE", "ICE Score", None),
    "XCLOC": ("LOC", "Level of Consciousness", None),
    "XCSEIZ": ("SEIZ", "Seizure", None),
    "XCMOTOR": ("MOTOR", "Motor Findings", None),
    "XCEDEMA": ("EDEMA", "Cerebral Edema", None),
    "XCCRSGR": ("CRSGR", "CRS Grade (ASTCT 2019)", None),
    "XCICAGR": ("ICANSGR", "ICANS Grade (ASTCT 2019)", None),
}
"""The store's horizontal XC columns -> rows of the custom findings domain XC (XCTESTCD,
XCTEST, unit). Vocabulary of the results: celltrial.clinical.grade_crs/grade_icans."""

SUPP: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "DM": (("DISEASE", "DISEASE", "Disease Under Study", "CRF"),),
    "EX": (("EXFRACN", "EXFRACN", "Split Infusion Fraction Number", "CRF"),
           ("EXDOSTOT", "CARCELLS", "CAR+ Cells Infused in This Fraction", "CRF"),
           ("EXVOL", "EXVOL", "Infused Volume (mL)", "CRF"),
           ("EXBAGN", "EXBAGN", "Number of Bags", "CRF")),
    "AE": (("AETOXSCL", "AETOXSCL", "Toxicity Grading Scale", "Assigned"),),
    "IS": (("ISSTRESN", "ISTITER", "Anti-CAR Antibody Titre", "CRF"),),
}
"""Store variables that are not SDTMIG 3.4 variables of their domain -> SUPP-- (store
variable, QNAM <= 8, QLABEL <= 40, QORIG). SDTMIG 3.4 section 8.4: non-standard variables go
to SUPP--, never into the parent domain."""

EX_CONSTANTS = {"EXDOSFRM": "SUSPENSION", "EXROUTE": "INTRAVENOUS"}
"""A CAR-T product is a cell suspension infused intravenously (every protocol of the library):
CT FRM ``SUSPENSION`` (C42994), ROUTE ``INTRAVENOUS`` (C38276)."""

EXDOSE_UNIT = ("cells/kg", "10^6/kg", 6)
"""EXDOSU: the store keeps cells/kg; CT UNIT has ``10^6/kg`` (C198380); EXDOSE is shifted by
10^6 in decimal (exact for the digits written)."""
