import numpy as np
import pytest

from anatomy_models.anatomy import Anatomy
from anatomy_models.errors import SpinesimError
from anatomy_models.label_landmarks import with_label_landmarks
from anatomy_models.structures import LabelTable, in_group
from anatomy_models.tissues import BONE_TISSUES
from scenarios.schema import load_scenario
from simulator.case.targets import target_for
from simulator.needle.trace import tracer_for
from tests.simulator.anatomy_phantoms import mini_spine


@pytest.mark.parametrize("scenario_id, inside", [
    ("ilesi-default", "epidural_space"), ("facet-default", "facet_joint.L4-L5.left"),
])
def test_target_points_lie_in_their_compartment(small_spine, scenario_id, inside):
    tracer = tracer_for(small_spine)
    target = target_for(load_scenario(scenario_id), small_spine, tracer)
    structure = tracer.structure_at(target.point)
    assert in_group(structure, inside)
    assert target.zone.contains(target.point, structure, tracer.tissue_of(structure))


def test_the_interlaminar_target_is_dorsal_to_the_sac_and_under_the_flavum(small_spine):
    tracer = tracer_for(small_spine)
    target = target_for(load_scenario("ilesi-default"), small_spine, tracer)
    down = tracer.trace(target.point + [0, 40, 0], np.array([0.0, -1.0, 0.0]), 40.0 + 30.0)
    names = [s.structure for s in down.segments]
    flavum = names.index("ligamentum_flavum.L4-L5")
    sac = next(i for i, name in enumerate(names) if in_group(name, "dural_sac"))
    tip = next(i for i, s in enumerate(down.segments) if s.depth_in_mm <= 40.0 < s.depth_out_mm)
    assert flavum < tip < sac
    assert target.point[0] > small_spine.landmark("L4-L5.interlaminar_window.center")[0]  # toward the left


def test_the_medial_branch_target_sits_on_the_dorsal_bone_surface(small_spine):
    tracer = tracer_for(small_spine)
    target = target_for(load_scenario("mbb-default"), small_spine, tracer)
    assert target.on_bone and target.landmark == "L5.SAP_TP_junction.left"
    ahead = tracer.trace(target.point, target.textbook_direction, 2.0)
    assert ahead.first_bone() is not None and ahead.first_bone().depth_in_mm < 0.5
    assert np.linalg.norm(target.point - small_spine.landmark(target.landmark)) < 10.0


def test_approach_views_and_entry_region(small_spine):
    tracer = tracer_for(small_spine)
    target = target_for(load_scenario("tfesi-default"), small_spine, tracer)
    alignment, trajectory, depth = target.views
    assert alignment.carm.primary_deg == 0 and trajectory.carm.primary_deg > 10  # ipsilateral (left) oblique
    assert depth.carm.primary_deg == 90.0 and depth.name == "lateral"
    assert target.entry_point[0] > target.point[0] and target.entry_point[1] > target.point[1]  # lateral, posterior
    assert 10.0 < target.entry_radius_mm < 40.0
    assert tracer.structure_at(target.entry_point + 2.0 * target.textbook_direction) != "air"


def test_missing_landmarks_are_clear_errors():
    phantom = mini_spine()  # has landmarks for L4-L5 only
    scenario = load_scenario("tfesi-default")
    wrong = scenario.model_copy(update={"target": scenario.target.model_copy(update={"level": "L3-L4"})})
    with pytest.raises(SpinesimError, match="no landmark named 'L3-L4.safe_triangle.left'"):
        target_for(wrong, phantom, tracer_for(phantom))


def test_the_l5_dorsal_ramus_target_rests_on_the_dorsal_surface_of_the_sacral_ala(small_spine):
    """Issue 19: the L5 dorsal ramus target sat in the ala's bone (2 mm grid) or, past its upper edge,
    over the psoas (1 mm grid). The nerve runs on the ala's dorsal surface at the base of the S1 SAP."""
    tracer = tracer_for(small_spine)
    scenario = load_scenario("mbb-l5-dorsal-ramus-right")
    target = target_for(scenario, small_spine, tracer)
    structure = tracer.structure_at(target.point)
    assert target.on_bone and target.landmark == "S1.SAP_ala_junction.right"
    assert tracer.tissue_of(structure) not in BONE_TISSUES and not in_group(structure, "muscle.psoas")
    ventral = tracer.trace(target.point, np.array([0.0, -1.0, 0.0]), 3.0).first_bone()
    assert ventral is not None and ventral.structure == "S1.ala.right" and ventral.depth_in_mm < 0.5
    assert np.linalg.norm(target.point - small_spine.landmark(target.landmark)) < 10.0
    assert target.description == "right L5 dorsal ramus at the S1 SAP-ala junction"


def _vertebra_labels_only(anatomy):
    """``anatomy`` as a CT segmented by vertebra only (TotalSegmentator, VerSe): its landmarks measured from them."""
    table = LabelTable()
    labels = np.zeros(anatomy.ct.shape, np.uint16)
    for level in ("T12", "L1", "L2", "L3", "L4", "L5", "S1"):
        labels[anatomy.mask(level)] = table.add(level, "cortical_bone").id
    return with_label_landmarks(Anatomy(anatomy.ct, table, anatomy.ct.with_array(labels)))


def _nearest_voxel_mm(volume, mask: np.ndarray, point: np.ndarray, reach_mm: float = 4.0) -> float:
    """Distance (mm) from ``point`` to the nearest voxel centre of ``mask`` within ``reach_mm`` (inf if none)."""
    centre = np.round(volume.world_to_voxel(point)).astype(int)
    reach = int(np.ceil(reach_mm / float(np.min(volume.spacing))))
    low = np.maximum(centre - reach, 0)
    ijk = np.argwhere(mask[low[0]:centre[0] + reach + 1, low[1]:centre[1] + reach + 1, low[2]:centre[2] + reach + 1])
    return float(np.min(np.linalg.norm(volume.voxel_to_world(ijk + low) - point, axis=1))) if len(ijk) else np.inf


def _check_l5_dorsal_ramus_targets(spine, anatomy):
    """Both sides' block and ablation targets for the L5 dorsal ramus in ``anatomy`` (``spine``'s CT, labelled
    in full or by vertebra), checked against ``spine``'s own parts: within 2 mm of a bone voxel, in the groove
    (lateral to the S1 SAP's middle, medial to the ala's lateral edge); the ablation's nerve course, the
    cannula's line up to the groove, off the bone."""
    tracer = tracer_for(anatomy)
    bone = np.isin(spine.labels.array, [label.id for label in spine.label_table if label.tissue in BONE_TISSUES])
    for side in ("left", "right"):
        sap = np.abs(spine.labels.voxel_to_world(np.argwhere(spine.mask(f"S1.SAP.{side}")))[:, 0]).mean()
        ala_edge = np.abs(spine.labels.voxel_to_world(np.argwhere(spine.mask(f"S1.ala.{side}")))[:, 0]).max()
        for case in ("mbb-l5-dorsal-ramus-right", "rfa-l5-dorsal-ramus-right"):
            scenario = load_scenario(case)
            scenario = scenario.model_copy(update={"target": scenario.target.model_copy(update={"side": side})})
            target = target_for(scenario, anatomy, tracer)
            assert _nearest_voxel_mm(spine.labels, bone, target.point) <= 2.0, (case, side, target.point)
            assert sap < abs(target.point[0]) < ala_edge, (case, side, target.point, sap, ala_edge)
            if target.nerve_course is not None:
                start, end = target.nerve_course
                course = start + np.linspace(0.0, 1.0, 31)[:, None] * (end - start)
                assert not any(tracer.tissue_of(tracer.structure_at(p)) in BONE_TISSUES for p in course), (side, course)


def test_the_l5_dorsal_ramus_targets_lie_on_bone_in_the_groove_beside_the_sloping_ala(small_spine):
    """The lowered, sloping ala of generator 27 moved the ablation's target into the erector spinae: its
    nerve course ran through the lateral mass behind the ala and the cannula could not reach it."""
    _check_l5_dorsal_ramus_targets(small_spine, small_spine)


def test_the_l5_dorsal_ramus_targets_are_found_on_a_ct_labelled_by_vertebra(small_spine):
    """The landmark is measured from the sacrum's voxels: the groove under the SAP's lateral part at the
    ala's top (the ala's border below the SAP's steep lateral face)."""
    _check_l5_dorsal_ramus_targets(small_spine, _vertebra_labels_only(small_spine))


@pytest.mark.slow
def test_the_l5_dorsal_ramus_targets_lie_in_the_groove_at_1mm(spine_1mm):
    _check_l5_dorsal_ramus_targets(spine_1mm, spine_1mm)
