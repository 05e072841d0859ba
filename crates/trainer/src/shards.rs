//! Splitting a step's work over threads: burn's CPU backends run most element-wise operations
//! on one thread, so independent parts of a batch — each with its own autodiff graph — run
//! side by side.

use grpo_policy::burn::module::Module;
use grpo_policy::burn::tensor::Device;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Shards a `setting` asks for: itself, or two per core for 0 (a shard's matrix products run
/// on burn's thread pool while the others' single-threaded element-wise operations go on).
pub(crate) fn update_shards(setting: usize) -> usize {
    match setting {
        0 => 2 * cores(),
        n => n,
    }
}

/// The policy a shard back-propagates through: with other shards beside it, its own `fork`
/// (a separate autodiff graph, so the shards do not contend for one; parameters keep their
/// ids, so their gradients accumulate onto the policy's), alone the policy itself.
pub(crate) fn shard_model<M: Module>(model: &M, device: &Device, shards: usize) -> M {
    if shards == 1 {
        model.clone()
    } else {
        model.clone().fork(device)
    }
}

/// `job(index, item)` over `items`, one thread each (inline when there is one), results in item
/// order.
pub(crate) fn in_parallel<I: Sync, T: Send>(
    items: &[I],
    job: impl Fn(usize, &I) -> T + Sync,
) -> Vec<T> {
    if items.len() == 1 {
        return vec![job(0, &items[0])];
    }
    std::thread::scope(|scope| {
        let job = &job;
        let handles: Vec<_> = items
            .iter()
            .enumerate()
            .map(|(i, item)| scope.spawn(move || job(i, item)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a training shard panicked"))
            .collect()
    })
}
