//! Running a `compare` grid's cells. Cells go one after another on each machine (a machine
//! measures one cell at a time, so cells never disturb each other's timings); with `parallel:
//! true`, different machines (this one, and each Grid node) run their cells at the same time,
//! each on its own thread. Rows are written by each cell as it ends, in any order; the cell index
//! keeps the grid's order.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use rhai::Dynamic;
use webaccel_browser_runtime::BrowserTarget;

use crate::accelerate::{accelerate_with, Cell};
use crate::compare::{Grid, GridCell};
use crate::error::ApiError;
use crate::platform::RunPlatform;
use crate::progress::Progress;
use crate::services::{lock, Services};

/// How a grid run went.
pub(crate) struct Ran {
    /// Only the results store failing, or the user's interrupt, stops a grid: a failed cell is
    /// a row with its error.
    pub outcome: Result<(), ApiError>,
    /// From the first cell's start to the last cell's end.
    pub wall_ms: f64,
    /// The cells' own times added up (more than `wall_ms` when machines ran at once).
    pub cells_ms: f64,
}

/// Which machine runs a cell: this one (native, local browsers, and browsers chosen
/// automatically, which selection takes from this machine first), or the Grid node of a slot.
fn machine(cell: &GridCell, nodes: &BTreeMap<String, String>) -> String {
    match (&cell.platform, &cell.browser) {
        (RunPlatform::Browser(_), Some(BrowserTarget::Remote(slot))) => {
            nodes.get(slot).cloned().unwrap_or_else(|| format!("grid:{slot}"))
        }
        _ => "this machine".into(),
    }
}

fn label(grid: &Grid, cell: &GridCell) -> String {
    crate::accelerate::cell_label(&grid.models[cell.model], &grid.cell_options(cell))
}

pub(crate) fn run(
    services: &Services,
    grid: &Grid,
    inputs: &[Dynamic],
    experiment_id: &str,
    progress: Option<&dyn Progress>,
) -> Ran {
    let cells = grid.cell_list();
    let mut queues: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    if grid.parallel {
        // Each slot's node, so that two slots on one node share its queue.
        let nodes: BTreeMap<String, String> = services
            .runtime
            .block_on(services.pool.grid_slots())
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.name, s.node_uri))
            .collect();
        for (i, cell) in cells.iter().enumerate() {
            queues.entry(machine(cell, &nodes)).or_default().push(i);
        }
    } else {
        queues.insert("this machine".into(), (0..cells.len()).collect());
    }
    let failed: Mutex<Option<ApiError>> = Mutex::new(None);
    let cells_ms = Mutex::new(0.0);
    let one_machine = |queue: &[usize]| {
        for &index in queue {
            if lock(&failed).is_some() {
                return;
            }
            if services.interrupt.is_raised() {
                *lock(&failed) = Some(ApiError::Interrupted);
                return;
            }
            let cell = &cells[index];
            let opts = grid.cell_options(cell);
            let label = label(grid, cell);
            let tag = Cell {
                experiment_id: Some(experiment_id.to_string()),
                cell_index: Some(index as i32),
                label: label.clone(),
            };
            let started = Instant::now();
            let outcome = accelerate_with(services, &grid.models[cell.model], inputs[cell.model].clone(), &opts, &tag);
            *lock(&cells_ms) += started.elapsed().as_secs_f64() * 1000.0;
            if let Some(p) = progress {
                match &outcome {
                    Ok(a) => p.cell(&label, Ok(a.latency_ms)),
                    Err(e) => p.cell(&label, Err(&e.to_string())),
                }
            }
            match outcome {
                Err(ApiError::Results(e)) => *lock(&failed) = Some(ApiError::Results(e)),
                Err(ApiError::Interrupted) => *lock(&failed) = Some(ApiError::Interrupted),
                _ => {}
            }
        }
    };
    let started = Instant::now();
    if queues.len() > 1 {
        std::thread::scope(|scope| {
            for queue in queues.values() {
                scope.spawn(|| one_machine(queue));
            }
        });
    } else if let Some(queue) = queues.values().next() {
        one_machine(queue);
    }
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let outcome = match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    };
    Ran { outcome, wall_ms, cells_ms: cells_ms.into_inner().unwrap_or_else(|e| e.into_inner()) }
}
