//! Saving and loading: round trips, and clear errors for bad checkpoints.

mod common;

use std::path::Path;

use common::{devices, fixtures, floats, int_tensor};
use grpo_policy::burn::tensor::Device;
use grpo_policy::{CausalLm, LanguageModel, LmConfig, PolicyError};

fn logits(model: &CausalLm, device: &Device) -> Vec<f32> {
    let mut cache = model.new_cache(vec![0]);
    floats(model.forward(int_tensor(&[vec![3, 1, 4, 1, 5]], device), &mut cache))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Rewrites a safetensors file's table of tensors with `edit` (data bytes travel with it).
fn edit_tensors(path: &Path, edit: impl FnOnce(&mut Tensors)) {
    let mut tensors = read_tensors(path);
    edit(&mut tensors);
    write_tensors(path, &tensors.iter().collect::<Vec<_>>());
}

#[test]
fn our_checkpoints_and_safetensors_round_trip_exactly() {
    for (name, device) in devices() {
        let mut config = LmConfig::small(50, 32, 2, 4, 64);
        config.num_key_value_heads = Some(2);
        config.tie_word_embeddings = false;
        device.seed(5);
        let model = CausalLm::new(&config, &device).unwrap();
        let before = logits(&model, &device);
        let dir = tempfile::tempdir().unwrap();

        model.save(&dir.path().join("ours")).unwrap();
        let again = CausalLm::load(&dir.path().join("ours"), &device).unwrap();
        assert_eq!(
            logits(&again, &device),
            before,
            "{name}: burnpack round trip"
        );

        model.save_safetensors(&dir.path().join("hf")).unwrap();
        let again = CausalLm::load(&dir.path().join("hf"), &device).unwrap();
        assert_eq!(
            logits(&again, &device),
            before,
            "{name}: safetensors round trip"
        );
        assert_eq!(again.config(), model.config());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("hf"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }
}

#[test]
fn a_hugging_face_checkpoint_saves_back_to_the_same_tensors() {
    let device = devices()[0].1.clone();
    let source = fixtures().join("qwen2-tied");
    let model = CausalLm::load(&source, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    model.save_safetensors(dir.path()).unwrap();
    let shapes = |path: &Path| {
        read_tensors(path)
            .into_iter()
            .map(|(name, (_, shape, _))| (name, shape))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        shapes(&dir.path().join("model.safetensors")),
        shapes(&source.join("model.safetensors"))
    );
    let reloaded = CausalLm::load(dir.path(), &device).unwrap();
    assert_eq!(logits(&reloaded, &device), logits(&model, &device));
}

#[test]
fn bad_checkpoints_are_clear_errors() {
    let device = devices()[0].1.clone();
    let source = fixtures().join("llama-untied");
    let dir = tempfile::tempdir().unwrap();

    // An unsupported architecture.
    let gpt2 = dir.path().join("gpt2");
    copy_dir(&source, &gpt2);
    let config = std::fs::read_to_string(gpt2.join("config.json"))
        .unwrap()
        .replace("\"llama\"", "\"gpt2\"");
    std::fs::write(gpt2.join("config.json"), config).unwrap();
    let error = CausalLm::load(&gpt2, &device).unwrap_err();
    assert!(
        matches!(error, PolicyError::UnsupportedModelType { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("config.json") && error.to_string().contains("gpt2"),
        "{error}"
    );

    // A missing tensor.
    let missing = dir.path().join("missing");
    copy_dir(&source, &missing);
    edit_tensors(&missing.join("model.safetensors"), |t| {
        t.remove("model.layers.1.mlp.up_proj.weight");
    });
    let error = CausalLm::load(&missing, &device).unwrap_err().to_string();
    assert!(
        error.contains("model.layers.1.mlp.up_proj.weight") && error.contains("missing"),
        "{error}"
    );

    // A mis-shaped tensor.
    let shaped = dir.path().join("shaped");
    copy_dir(&source, &shaped);
    edit_tensors(&shaped.join("model.safetensors"), |t| {
        t.get_mut("model.layers.0.self_attn.k_proj.weight")
            .unwrap()
            .1 = vec![48, 24];
    });
    let error = CausalLm::load(&shaped, &device).unwrap_err().to_string();
    assert!(
        error.contains("model.layers.0.self_attn.k_proj.weight"),
        "{error}"
    );
    assert!(
        error.contains("[48, 24]") && error.contains("[24, 48]"),
        "{error}"
    );

    // A truncated file.
    let truncated = dir.path().join("truncated");
    copy_dir(&source, &truncated);
    let bytes = std::fs::read(truncated.join("model.safetensors")).unwrap();
    std::fs::write(
        truncated.join("model.safetensors"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let error = CausalLm::load(&truncated, &device).unwrap_err().to_string();
    assert!(
        error.contains("model.safetensors") && error.contains("truncated"),
        "{error}"
    );

    // No weights at all.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::copy(source.join("config.json"), empty.join("config.json")).unwrap();
    let error = CausalLm::load(&empty, &device).unwrap_err().to_string();
    assert!(error.contains("no model.safetensors"), "{error}");
}

/// The tensors of a safetensors file: name → (dtype, shape, bytes).
type Tensors = std::collections::BTreeMap<String, (String, Vec<usize>, Vec<u8>)>;

fn read_tensors(path: &Path) -> Tensors {
    let bytes = std::fs::read(path).unwrap();
    let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + length]).unwrap();
    let data = &bytes[8 + length..];
    header
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .map(|(name, entry)| {
            let [begin, end] = [0, 1].map(|i| entry["data_offsets"][i].as_u64().unwrap() as usize);
            let shape = entry["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            (
                name,
                (
                    entry["dtype"].as_str().unwrap().to_owned(),
                    shape,
                    data[begin..end].to_vec(),
                ),
            )
        })
        .collect()
}

/// Writes a safetensors file (the format: u64 header length, JSON header, data).
/// One entry of [`Tensors`], borrowed.
type Entry<'a> = (&'a String, &'a (String, Vec<usize>, Vec<u8>));

fn write_tensors(path: &Path, tensors: &[Entry<'_>]) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, (dtype, shape, bytes)) in tensors {
        let begin = data.len();
        data.extend_from_slice(bytes);
        header.insert(
            (*name).clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [begin, data.len()]}),
        );
    }
    let mut text = serde_json::to_vec(&header).unwrap();
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(data);
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_sharded_checkpoint_loads_like_the_single_file() {
    let device = devices()[0].1.clone();
    let source = fixtures().join("llama-untied");
    let dir = tempfile::tempdir().unwrap();
    for file in ["config.json", "generation_config.json", "tokenizer.json"] {
        std::fs::copy(source.join(file), dir.path().join(file)).unwrap();
    }
    let tensors = read_tensors(&source.join("model.safetensors"));
    let entries: Vec<_> = tensors.iter().collect();
    let (first, second) = entries.split_at(entries.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (shard, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        write_tensors(&dir.path().join(shard), part);
        for (name, _) in part {
            weight_map.insert((*name).clone(), serde_json::json!(shard));
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        index.to_string(),
    )
    .unwrap();

    let sharded = CausalLm::load(dir.path(), &device).unwrap();
    let single = CausalLm::load(&source, &device).unwrap();
    assert_eq!(logits(&sharded, &device), logits(&single, &device));
}

#[test]
fn a_bfloat16_checkpoint_is_widened_to_f32() {
    let device = devices()[0].1.clone();
    let source = fixtures().join("qwen2-tied");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(source.join("config.json"), dir.path().join("config.json")).unwrap();
    let tensors = read_tensors(&source.join("model.safetensors"));
    // bf16 is the top half of an f32 (truncation: the exact bf16 of these values is within 2⁻⁸).
    let halved: Tensors = tensors
        .into_iter()
        .map(|(name, (_, shape, bytes))| {
            let bf16: Vec<u8> = bytes.chunks(4).flat_map(|f| [f[2], f[3]]).collect();
            (name, ("BF16".to_owned(), shape, bf16))
        })
        .collect();
    write_tensors(
        &dir.path().join("model.safetensors"),
        &halved.iter().collect::<Vec<_>>(),
    );

    let widened = CausalLm::load(dir.path(), &device).unwrap();
    let exact = CausalLm::load(&source, &device).unwrap();
    let diff = common::max_abs_diff(&logits(&widened, &device), &logits(&exact, &device));
    assert!(
        diff > 0.0 && diff < 0.25,
        "bf16 weights give nearby logits, got max abs diff {diff}"
    );
}
