"""De-identification, modelled on DICOM PS3.15 Annex E (Basic Application Level Confidentiality Profile).

What spinesim keeps from a patient's DICOM files, and how it makes sure nothing identifying gets out:

- **On import nothing is copied wholesale.** :func:`safe_facts` takes an allowlist of technical facts
  (modality, manufacturer and model, kVp, slice thickness, convolution kernel, body part, patient
  position, whether contrast was given, series description). The allowlist holds only attributes
  the Basic Profile keeps, plus the descriptors its *Clean Descriptors Option* (PS3.15 E.3.5) keeps
  after cleaning: free text is scrubbed of every identifying string found in the same header
  (names, IDs, addresses, institutions, dates; :func:`identifying_strings`) and of date- and
  ID-shaped numbers (:func:`scrub_text`).
- **Dates are removed, not shifted.** A trainee's anatomy has no use for when the scan was made, and
  a shifted date still carries the intervals between studies; so study, series, acquisition and
  birth dates never enter an anatomy. UIDs are never kept either: an exported series gets fresh ones.
- **Exported DICOM carries the profile's mark.** :func:`mark_deidentified` sets Patient Identity
  Removed = YES and the De-identification Method (Code) attributes naming the Basic Profile
  (DCM 113100) and the Clean Descriptors Option (DCM 113105); :func:`identifying_elements` is the
  gate every exported dataset passes: it lists any element the profile would remove or blank
  (the table :data:`BASIC_PROFILE`, plus every private element, person name, date and time,
  overlay and curve), and the writer refuses to write a dataset for which it is not empty.
- **Burned-in annotation** (Burned In Annotation = YES) means the pixels themselves may show the
  patient's details, which no tag editing removes (the profile's Clean Pixel Data Option needs a
  human to check); the DICOM reader refuses such series.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

# PS3.15 Table E.1-1, Basic Profile column, by action. X: remove; Z: empty (or dummy);
# D: dummy value; U: replace UID. Where the table allows several actions (X/Z, X/Z/D, Z/D), the
# strictest applicable one is listed. Attributes that only Retain/Clean options keep are under X.
_REMOVE = """
AccessionNumber AcquisitionComments AcquisitionContextSequence AcquisitionDate AcquisitionDateTime
AcquisitionDeviceProcessingDescription AcquisitionTime ActualHumanPerformersSequence
AdditionalPatientHistory AdmissionID AdmittingDate AdmittingDiagnosesCodeSequence
AdmittingDiagnosesDescription AdmittingTime Allergies Arbitrary AuthorObserverSequence BranchOfService
CassetteID CommentsOnThePerformedProcedureStep ConfidentialityConstraintOnPatientDataDescription
ContentCreatorIdentificationCodeSequence ContentCreatorName ContentDate ContentSequence ContentTime
ContrastBolusAgent ContributionDateTime ContributionDescription CountryOfResidence CurrentPatientLocation
CustodialOrganizationSequence DataSetTrailingPadding DateOfLastCalibration DateOfLastDetectorCalibration
DerivationDescription DetectorID DeviceSerialNumber DigitalSignaturesSequence
DischargeDiagnosisDescription DistributionAddress DistributionName EthnicGroup FrameComments GantryID
GeneratorID GraphicAnnotationSequence HumanPerformerName HumanPerformerOrganization IconImageSequence
IdentifyingComments ImageComments ImagePresentationComments ImagingServiceRequestComments Impressions
InstanceCreationDate InstanceCreationTime InstanceCoercionDateTime InstitutionAddress
InstitutionCodeSequence InstitutionName InstitutionalDepartmentName InsurancePlanIdentification
IntendedRecipientsOfResultsIdentificationSequence InterpretationApproverSequence InterpretationAuthor
InterpretationDiagnosisDescription InterpretationIDIssuer InterpretationRecorder InterpretationText
InterpretationTranscriber IssuerOfAdmissionIDSequence IssuerOfPatientID IssuerOfServiceEpisodeIDSequence
LastMenstrualDate MAC MedicalAlerts MedicalRecordLocator MilitaryRank ModifiedAttributesSequence
ModifiedImageDescription ModifyingDeviceID NameOfPhysiciansReadingStudy
NamesOfIntendedRecipientsOfResults Occupation OperatorIdentificationSequence OperatorsName
OrderCallbackPhoneNumber OrderEnteredBy OrderEntererLocation OriginalAttributesSequence
OtherPatientIDs OtherPatientIDsSequence OtherPatientNames OverlayDate OverlayTime
ParticipantSequence PatientAddress PatientAge PatientBirthName PatientBirthTime PatientComments
PatientInsurancePlanCodeSequence PatientMotherBirthName PatientPrimaryLanguageCodeSequence
PatientReligiousPreference PatientSexNeutered PatientSize PatientState PatientTelephoneNumbers
PatientTransportArrangements PatientWeight PerformedLocation PerformedProcedureStepDescription
PerformedProcedureStepEndDate PerformedProcedureStepEndTime PerformedProcedureStepID
PerformedProcedureStepStartDate PerformedProcedureStepStartTime PerformedStationAETitle
PerformedStationGeographicLocationCodeSequence PerformedStationName PerformedStationNameCodeSequence
PerformingPhysicianIdentificationSequence PerformingPhysicianName PersonAddress
PersonIdentificationCodeSequence PersonName PersonTelephoneNumbers PhysicianApprovingInterpretation
PhysiciansOfRecord PhysiciansOfRecordIdentificationSequence PhysiciansReadingStudyIdentificationSequence
PlateID PreMedication PregnancyStatus ProtocolName ReasonForStudy
ReasonForTheImagingServiceRequest ReferencedDigitalSignatureSequence ReferencedImageSequence
ReferencedPatientAliasSequence ReferencedPatientSequence ReferencedPerformedProcedureStepSequence
ReferencedSOPInstanceMACSequence ReferencedStudySequence ReferringPhysicianAddress
ReferringPhysicianIdentificationSequence ReferringPhysicianTelephoneNumbers RegionOfResidence
RequestAttributesSequence RequestedContrastAgent RequestedProcedureComments RequestedProcedureDescription
RequestedProcedureID RequestedProcedureLocation RequestingPhysician RequestingService
ResponsibleOrganization ResponsiblePerson ResultsComments ResultsDistributionListSequence ResultsIDIssuer
ReviewerName ScheduledHumanPerformersSequence ScheduledPatientInstitutionResidence
ScheduledPerformingPhysicianIdentificationSequence ScheduledPerformingPhysicianName
ScheduledProcedureStepDescription ScheduledProcedureStepEndDate ScheduledProcedureStepEndTime
ScheduledProcedureStepLocation ScheduledProcedureStepStartDate ScheduledProcedureStepStartTime
ScheduledStationAETitle ScheduledStationGeographicLocationCodeSequence ScheduledStationName
ScheduledStationNameCodeSequence ScheduledStudyLocation ScheduledStudyLocationAETitle SeriesDate
SeriesDescription SeriesTime ServiceEpisodeDescription ServiceEpisodeID SmokingStatus SourceImageSequence
SpecialNeeds StationName StudyComments StudyDescription StudyIDIssuer TextComments TextString
TimezoneOffsetFromUTC TopicAuthor TopicKeywords TopicSubject TopicTitle VerifyingOrganization
VisitComments
"""
_EMPTY = """
PatientName PatientID PatientBirthDate PatientSex StudyDate StudyTime StudyID ReferringPhysicianName
FillerOrderNumberImagingServiceRequest PlacerOrderNumberImagingServiceRequest
VerifyingObserverIdentificationCodeSequence VerifyingObserverName VerifyingObserverSequence
"""
_REPLACE_UID = """
ConcatenationUID DeviceUID DimensionOrganizationUID DoseReferenceUID FailedSOPInstanceUIDList
FiducialUID FrameOfReferenceUID InstanceCreatorUID IrradiationEventUID LargePaletteColorLookupTableUID
MediaStorageSOPInstanceUID ReferencedFrameOfReferenceUID ReferencedSOPInstanceUID
ReferencedSOPInstanceUIDInFile RelatedFrameOfReferenceUID RequestedSOPInstanceUID SeriesInstanceUID
SOPInstanceUID StorageMediaFileSetUID StudyInstanceUID SynchronizationFrameOfReferenceUID
TemplateExtensionCreatorUID TemplateExtensionOrganizationUID TransactionUID UID
"""

#: The dummy value the Basic Profile's "Z" action allows instead of an empty one: exports name the
#: patient and study with it, so indexes that need a non-empty Patient ID or Study ID still work.
DUMMY = "ANONYMOUS"
# The Basic Profile's dummy date and time (action "D": a non-zero-length dummy value), for the Type 1 dates
# a new object must carry (a Segmentation's Content Date and Time): no day of the patient's care.
DUMMY_DATE = "19000101"
DUMMY_TIME = "000000"

# Descriptors the Clean Descriptors Option keeps once cleaned (the rest of _REMOVE stays removed).
CLEANED_DESCRIPTORS = ("SeriesDescription",)


def _tags(keywords: str) -> list[int]:
    tags = []
    for keyword in keywords.split():
        tag = tag_for_keyword(keyword)
        if tag is None:  # a typo in the table above must fail loudly, not skip an attribute
            raise KeyError(f"unknown DICOM keyword {keyword!r} in the de-identification table")
        tags.append(tag)
    return tags


#: DICOM tag -> Basic Profile action ("X" remove, "Z" empty, "U" replace UID).
BASIC_PROFILE: dict[int, str] = {
    **{tag: "X" for tag in _tags(_REMOVE)},
    **{tag: "Z" for tag in _tags(_EMPTY)},
    **{tag: "U" for tag in _tags(_REPLACE_UID)},
}

# Elements whose values name or locate the patient, the staff or the place; their values are
# what free text is scrubbed of.
_IDENTIFYING_VALUES = _tags("""
PatientName PatientID OtherPatientIDs OtherPatientNames PatientBirthName PatientMotherBirthName PatientBirthDate
PatientAddress PatientTelephoneNumbers AccessionNumber StudyID InstitutionName InstitutionAddress
InstitutionalDepartmentName StationName DeviceSerialNumber ReferringPhysicianName PhysiciansOfRecord
PerformingPhysicianName NameOfPhysiciansReadingStudy OperatorsName RequestingPhysician
StudyDate SeriesDate AcquisitionDate ContentDate MedicalRecordLocator AdmissionID
""")

# Date-like numbers (19970430, 1997-04-30, 30.04.1997) and long digit runs (record numbers).
_DATE_OR_ID = re.compile(r"\b(\d{4}[-./]?\d{2}[-./]?\d{2}|\d{2}[-./]\d{2}[-./]\d{2,4}|\d{6,})\b")
_MASK = "***"
_MAX_DESCRIPTOR = 64  # a LO value's maximum length (PS3.5 Table 6.2-1)


def identifying_strings(dataset: Dataset) -> set[str]:
    """The identifying text of a header: names (and their parts), IDs, addresses, places, dates.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset(); ds.PatientName = "Doe^Jane"; ds.PatientID = "MRN-0042"
    >>> sorted(identifying_strings(ds))
    ['Doe', 'Doe Jane', 'Doe^Jane', 'Jane', 'MRN-0042']
    """
    found: set[str] = set()
    for element in _walk(dataset):
        if element.tag in _IDENTIFYING_VALUES or element.VR == "PN":
            values = element.value if element.VM > 1 else [element.value]
            for value in values:
                text = str(value).strip()
                if not text:
                    continue
                found.add(text)
                if element.VR == "PN":
                    parts = [p for p in re.split(r"[\^= ,]+", text) if p]
                    found.update(parts)
                    found.add(" ".join(parts))
    return {s for s in found if len(s) >= 2}


def scrub_text(text: str, identifying: Iterable[str] = ()) -> str:
    """``text`` with identifying strings, dates and long digit runs masked by ``***``.

    Matching ignores case. Strings shorter than three characters are only masked as whole words, so
    a patient called "Li" does not turn "SPLINE" into "SP***NE".

    Examples
    --------
    >>> scrub_text("Lumbar spine Doe 19970430 2.0 B30f", {"Doe"})
    'Lumbar spine *** *** 2.0 B30f'
    """
    for value in sorted(identifying, key=len, reverse=True):
        escaped = re.escape(value)
        pattern = escaped if len(value) >= 3 else rf"\b{escaped}\b"
        text = re.sub(pattern, _MASK, text, flags=re.IGNORECASE)
    return _DATE_OR_ID.sub(_MASK, text).strip()[:_MAX_DESCRIPTOR]


def _number(dataset: Dataset, keyword: str) -> float | None:
    try:
        value = float(dataset.get(keyword))
    except (TypeError, ValueError):
        return None
    return value if value == value else None  # drop NaN


def safe_facts(dataset: Dataset) -> dict[str, Any]:
    """The technical facts of a CT header that spinesim may keep (JSON-serialisable, no PHI).

    Only allowlisted attributes are read; free text is cleaned with :func:`scrub_text` against the
    header's own identifying strings. Missing attributes are left out.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset(); ds.Modality = "CT"; ds.KVP = "120"; ds.PatientName = "Doe^Jane"
    >>> ds.SeriesDescription = "Doe L-spine 1.0"; ds.ContrastBolusAgent = "Omnipaque 350"
    >>> safe_facts(ds)
    {'modality': 'CT', 'kvp': 120.0, 'contrast': True, 'series_description': '*** L-spine 1.0'}
    """
    identifying = identifying_strings(dataset)
    facts: dict[str, Any] = {}
    for key, keyword in (("modality", "Modality"), ("manufacturer", "Manufacturer"),
                         ("manufacturer_model", "ManufacturerModelName"), ("patient_position", "PatientPosition"),
                         ("body_part", "BodyPartExamined"), ("convolution_kernel", "ConvolutionKernel")):
        value = dataset.get(keyword)
        if value:
            text = str(value) if isinstance(value, str) else "\\".join(str(v) for v in value)
            cleaned = scrub_text(text, identifying)
            if cleaned:
                facts[key] = cleaned
    for key, keyword in (("kvp", "KVP"), ("slice_thickness_mm", "SliceThickness")):
        value = _number(dataset, keyword)
        if value is not None:
            facts[key] = value
    if "ContrastBolusAgent" in dataset:
        # Only whether contrast was given: the agent's free text may hold anything.
        facts["contrast"] = bool(str(dataset.ContrastBolusAgent).strip())
    for keyword in CLEANED_DESCRIPTORS:
        cleaned = scrub_text(str(dataset.get(keyword) or ""), identifying)
        if cleaned:
            facts["series_description"] = cleaned
    return facts


def _walk(dataset: Dataset) -> Iterable[Any]:
    """Every data element of ``dataset`` and of the items of its sequences (file meta included).

    Iterative, not recursive: a file with sequences nested thousands deep must not exhaust the stack.
    """
    file_meta = getattr(dataset, "file_meta", None)
    if file_meta is not None:
        yield from file_meta
    pending = [iter(dataset)]
    while pending:
        element = next(pending[-1], None)
        if element is None:
            pending.pop()
            continue
        yield element
        if element.VR == "SQ" and isinstance(element.value, Sequence):
            pending.append(e for item in element.value for e in item)


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or (hasattr(value, "__len__") and len(value) == 0)


def identifying_elements(dataset: Dataset, *, fresh_uids: Iterable[str] = ()) -> list[str]:
    """Elements of ``dataset`` the Basic Profile would remove, blank or replace, by name.

    Flags any non-empty element the profile removes or empties (except the descriptors the Clean
    Descriptors Option keeps, :data:`CLEANED_DESCRIPTORS`), any UID the profile replaces
    unless it is one of ``fresh_uids`` (those made for this export), and every private element,
    date, date-time, time, overlay (60xx) and curve (50xx) element, and any person name or element
    the profile empties unless it holds :data:`DUMMY`. An empty list means the dataset passes.

    Examples
    --------
    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset(); ds.Modality = "CT"; ds.PatientName = ""; ds.InstitutionName = "St Elsewhere"
    >>> identifying_elements(ds)
    ['InstitutionName']
    """
    fresh = set(fresh_uids)
    problems = []
    for element in _walk(dataset):
        tag = element.tag
        value = element.value
        action = BASIC_PROFILE.get(tag)
        if element.keyword in CLEANED_DESCRIPTORS or element.VR == "SQ" or str(value) == DUMMY:
            # A sequence is judged by its items' elements (walked too); the dummy value identifies no one.
            continue
        if tag.is_private or tag.group & 0xFF00 in (0x5000, 0x6000):
            problems.append(element.keyword or str(tag))
        elif action == "U":
            if not _is_empty(value) and str(value) not in fresh:
                problems.append(element.keyword)
        elif action == "Z" or element.VR == "PN":
            if not _is_empty(value) and str(value) != DUMMY:
                problems.append(element.keyword or str(tag))
        elif (action is not None or element.VR in ("DA", "DT", "TM")) and not _is_empty(value) and not (
                element.VR in ("DA", "TM") and str(value) in (DUMMY_DATE, DUMMY_TIME)):
            problems.append(element.keyword or str(tag))
    return problems


def mark_deidentified(dataset: Dataset) -> None:
    """Record on ``dataset`` that it was de-identified with the Basic Profile and Clean Descriptors."""
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = "PS3.15 Basic Application Level Confidentiality Profile; spinesim"
    codes = []
    for value, meaning in (("113100", "Basic Application Confidentiality Profile"),
                           ("113105", "Clean Descriptors Option")):
        code = Dataset()
        code.CodeValue = value
        code.CodingSchemeDesignator = "DCM"
        code.CodeMeaning = meaning
        codes.append(code)
    dataset.DeidentificationMethodCodeSequence = codes
