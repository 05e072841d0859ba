//! LoRA: adapters trained by Hugging Face peft reproduce peft's logits here, ours are written
//! in peft's format, a fresh adapter starts as the base, the adapter switched off is the base
//! bitwise, and merging folds it into plain weights. Fixtures: `scripts/make_lora_fixtures.py`.

mod common;

use std::path::Path;

use common::{devices, fixtures, floats, int_tensor, max_abs_diff};
use grpo_policy::burn::module::Module;
use grpo_policy::burn::tensor::{DType, Device, FloatDType, Tensor};
use grpo_policy::{CausalLm, LanguageModel, LmConfig, LoraConfig, PolicyError, TargetModules};

#[derive(serde::Deserialize)]
struct Reference {
    base: String,
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    ids: Vec<u32>,
    logits: Vec<Vec<f32>>,
}

const ADAPTERS: [&str; 2] = ["qwen2-tied-lora", "llama-untied-lora"];

fn reference(adapter: &str) -> Reference {
    let path = fixtures().join(adapter).join("reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn logits(model: &CausalLm, ids: &[u32], device: &Device) -> Vec<f32> {
    let mut cache = model.new_cache(vec![0]);
    floats(model.forward(int_tensor(&[ids.to_vec()], device), &mut cache))
}

fn peft_model(adapter: &str, device: &Device) -> CausalLm {
    let base = CausalLm::load(&fixtures().join(reference(adapter).base), device).unwrap();
    base.load_adapter(&fixtures().join(adapter)).unwrap()
}

#[test]
fn adapters_trained_by_peft_give_peft_logits() {
    for adapter in ADAPTERS {
        let reference = reference(adapter);
        for (device_name, device) in devices() {
            let model = peft_model(adapter, &device);
            let base = CausalLm::load(&fixtures().join(&reference.base), &device).unwrap();
            for case in &reference.cases {
                let at = format!("{adapter} on {device_name}, ids {:?}", case.ids);
                let expected: Vec<f32> = case.logits.iter().flatten().copied().collect();
                let ours = logits(&model, &case.ids, &device);
                let diff = max_abs_diff(&ours, &expected);
                assert!(diff <= 1e-4, "{at}: logits max abs diff {diff}");
                // The adapter matters, so the match above means something.
                let moved = max_abs_diff(&logits(&base, &case.ids, &device), &expected);
                assert!(
                    moved > 1e-2,
                    "{at}: the adapter moves logits by only {moved}"
                );
            }
        }
    }
}

#[test]
fn the_adapter_switched_off_is_the_base_bitwise() {
    let device = Device::flex();
    for adapter in ADAPTERS {
        let reference = reference(adapter);
        let base = CausalLm::load(&fixtures().join(&reference.base), &device).unwrap();
        let model = peft_model(adapter, &device);
        assert!(
            base.without_adapters().is_none(),
            "a plain model has no base to fall back to"
        );
        let off = model
            .without_adapters()
            .expect("an adapted model has its base");
        for case in &reference.cases {
            assert_eq!(
                logits(&off, &case.ids, &device),
                logits(&base, &case.ids, &device),
                "{adapter}: adapter off vs base"
            );
        }
        // Switching off shares the weights: the adapted model still adapts.
        let ids = &reference.cases[0].ids;
        assert_ne!(logits(&model, ids, &device), logits(&off, ids, &device));
    }
}

#[test]
fn a_fresh_adapter_starts_as_the_base_and_trains_nothing_else() {
    let device = Device::flex();
    device.seed(3);
    let mut config = LmConfig::small(64, 32, 2, 4, 64);
    config.num_key_value_heads = Some(2);
    let base = CausalLm::new(&config, &device).unwrap();
    let ids = [3, 1, 4, 1, 5, 9];
    let before = logits(&base, &ids, &device);
    let lora = LoraConfig {
        target_modules: TargetModules::AllLinear("all-linear".into()),
        ..LoraConfig::new(4, 8.0, &[])
    };
    let model = base.with_lora(&lora).unwrap();
    assert_eq!(
        logits(&model, &ids, &device),
        before,
        "B = 0: the base's outputs"
    );
    let adapters = model.adapters();
    assert_eq!(adapters.len(), 2 * 7, "every projection of both layers");
    assert_eq!(adapters[0].0, "model.layers.0.self_attn.q_proj");
    // A is PEFT's kaiming-uniform U(±1/√d_in), B zero.
    let a = floats(adapters[0].1.a.val());
    let bound = 1.0 / (32f32).sqrt();
    assert!(a.iter().all(|v| v.abs() <= bound) && a.iter().any(|v| v.abs() > bound / 2.0));
    assert!(floats(adapters[0].1.b.val()).iter().all(|&v| v == 0.0));
    assert_eq!(adapters[0].1.scale, 2.0);
    // Once training starts, only the factors require gradients: r·(d_in + d_out) per
    // projection — q 32→32, k and v 32→16, o 32→32, gate and up 32→64, down 64→32 — per layer.
    let trainable = model.fork(&device.autodiff()).train();
    let per_layer = 4 * ((32 + 32) + 2 * (32 + 16) + (32 + 32) + 3 * (32 + 64));
    assert_eq!(trainable_parameters(&trainable), 2 * per_layer);
}

/// How many parameter values require a gradient.
fn trainable_parameters(model: &CausalLm) -> usize {
    use grpo_policy::burn::module::{Module, ModuleVisitor, Param};
    use grpo_policy::burn::tensor::Tensor;
    struct Count(usize);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if param.val().is_require_grad() {
                self.0 += param.val().shape().num_elements();
            }
        }
    }
    let mut count = Count(0);
    model.visit(&mut count);
    count.0
}

#[test]
fn our_saved_adapter_is_peft_s_file_again_and_loads_back() {
    let device = Device::flex();
    for adapter in ADAPTERS {
        let model = peft_model(adapter, &device);
        let dir = tempfile::tempdir().unwrap();
        model.save_adapter(dir.path()).unwrap();
        // The same tensors, names, shapes and f32 values as peft's own file.
        assert_eq!(
            tensors(&dir.path().join("adapter_model.safetensors")),
            tensors(&fixtures().join(adapter).join("adapter_model.safetensors")),
            "{adapter}"
        );
        let config = |dir: &Path| -> serde_json::Value {
            serde_json::from_str(&std::fs::read_to_string(dir.join("adapter_config.json")).unwrap())
                .unwrap()
        };
        let (ours, peft) = (config(dir.path()), config(&fixtures().join(adapter)));
        for key in ["peft_type", "r", "target_modules", "use_rslora", "bias"] {
            assert_eq!(
                ours[key], peft[key],
                "{adapter}: adapter_config.json `{key}`"
            );
        }
        assert_eq!(ours["lora_alpha"].as_f64(), peft["lora_alpha"].as_f64());
        let reference = reference(adapter);
        let base = CausalLm::load(&fixtures().join(&reference.base), &device).unwrap();
        let again = base.load_adapter(dir.path()).unwrap();
        let ids = &reference.cases[1].ids;
        assert_eq!(logits(&again, ids, &device), logits(&model, ids, &device));
    }
}

/// name → (shape, f32 bits) of a safetensors file.
fn tensors(path: &Path) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
            let bits = view
                .data()
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, view.shape().to_vec(), bits)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn checkpoints_carry_the_adapter_and_merging_folds_it_in() {
    let device = Device::flex();
    let adapter = "qwen2-tied-lora";
    let reference = reference(adapter);
    let model = peft_model(adapter, &device);
    let dir = tempfile::tempdir().unwrap();

    // Our checkpoint: base weights in model.bpk, the adapter once, in peft's files.
    model.save(&dir.path().join("ours")).unwrap();
    assert!(CausalLm::has_adapter(&dir.path().join("ours")));
    let again = CausalLm::load(&dir.path().join("ours"), &device).unwrap();
    assert_eq!(again.lora(), model.lora());
    for case in &reference.cases {
        assert_eq!(
            logits(&again, &case.ids, &device),
            logits(&model, &case.ids, &device)
        );
    }

    // Merged: a plain Hugging Face directory with the adapter's logits.
    let merged = model.clone().merge_adapters();
    assert!(merged.lora().is_none() && merged.adapters().is_empty());
    merged.save_safetensors(&dir.path().join("merged")).unwrap();
    assert!(!CausalLm::has_adapter(&dir.path().join("merged")));
    let names: Vec<String> = tensors(&dir.path().join("merged/model.safetensors"))
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    assert!(names.iter().all(|n| !n.contains("lora")), "{names:?}");
    let base_names: Vec<String> =
        tensors(&fixtures().join(&reference.base).join("model.safetensors"))
            .into_iter()
            .map(|(name, _, _)| name)
            .collect();
    assert_eq!(names, base_names, "the base's tensor names, nothing more");
    let loaded = CausalLm::load(&dir.path().join("merged"), &device).unwrap();
    for case in &reference.cases {
        let diff = max_abs_diff(
            &logits(&loaded, &case.ids, &device),
            &logits(&model, &case.ids, &device),
        );
        assert!(diff <= 1e-5, "merged vs adapter forward: {diff}");
    }

    // A Hugging Face save of an adapted model keeps the adapter beside the base.
    model.save_safetensors(&dir.path().join("hf")).unwrap();
    let hf = CausalLm::load(&dir.path().join("hf"), &device).unwrap();
    let ids = &reference.cases[0].ids;
    assert_eq!(logits(&hf, ids, &device), logits(&model, ids, &device));
}

/// A copy of the qwen2 adapter with `edit` applied to its config.
fn edited_adapter(edit: impl FnOnce(&mut serde_json::Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = fixtures().join("qwen2-tied-lora");
    std::fs::copy(
        from.join("adapter_model.safetensors"),
        dir.path().join("adapter_model.safetensors"),
    )
    .unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(from.join("adapter_config.json")).unwrap())
            .unwrap();
    edit(&mut config);
    std::fs::write(dir.path().join("adapter_config.json"), config.to_string()).unwrap();
    dir
}

#[test]
fn bad_adapters_and_configs_are_named() {
    let device = Device::flex();
    let base = || CausalLm::load(&fixtures().join("qwen2-tied"), &device).unwrap();
    let message = |e: PolicyError| e.to_string();

    let dir = edited_adapter(|c| c["modules_to_save"] = serde_json::json!(["lm_head"]));
    let error = message(base().load_adapter(dir.path()).unwrap_err());
    assert!(
        error.contains("adapter_config.json") && error.contains("modules_to_save"),
        "{error}"
    );

    let dir = edited_adapter(|c| c["use_dora"] = serde_json::json!(true));
    let error = message(base().load_adapter(dir.path()).unwrap_err());
    assert!(error.contains("use_dora"), "{error}");

    // The file holds adapters for all seven projections; a config naming two leaves five.
    let dir = edited_adapter(|c| c["target_modules"] = serde_json::json!(["q_proj", "v_proj"]));
    let error = message(base().load_adapter(dir.path()).unwrap_err());
    assert!(
        error.contains("adapter_model.safetensors") && error.contains("not a targeted projection"),
        "{error}"
    );

    // Rank 4 in the file, 8 in the config.
    let dir = edited_adapter(|c| c["r"] = serde_json::json!(8));
    let error = message(base().load_adapter(dir.path()).unwrap_err());
    assert!(
        error.contains("shape") && error.contains("q_proj"),
        "{error}"
    );

    // Another base's shapes.
    let mut config = LmConfig::small(300, 32, 2, 4, 64);
    config.num_key_value_heads = Some(2);
    let other = CausalLm::new(&config, &device).unwrap();
    let error = message(
        other
            .load_adapter(&fixtures().join("qwen2-tied-lora"))
            .unwrap_err(),
    );
    assert!(error.contains("shape"), "{error}");

    for (config, field) in [
        (LoraConfig::new(0, 8.0, &["q_proj"]), "r"),
        (LoraConfig::new(4, 0.0, &["q_proj"]), "lora_alpha"),
        (LoraConfig::new(4, 8.0, &["lm_head"]), "target_modules"),
        (
            LoraConfig::new(4, 8.0, &["q_proj", "q_proj"]),
            "target_modules",
        ),
        (LoraConfig::new(4, 8.0, &["mlp.q_proj"]), "target_modules"),
        (LoraConfig::new(4, 8.0, &[]), "target_modules"),
        (
            LoraConfig {
                lora_dropout: 0.05,
                ..LoraConfig::new(4, 8.0, &["q_proj"])
            },
            "lora_dropout",
        ),
    ] {
        let error = message(base().with_lora(&config).unwrap_err());
        assert!(error.contains(&format!("`{field}`")), "{field}: {error}");
    }
    let twice = base().with_lora(&LoraConfig::default()).unwrap();
    let error = message(twice.with_lora(&LoraConfig::default()).unwrap_err());
    assert!(error.contains("already has LoRA adapters"), "{error}");
}

/// The base weights of `model` as f32 values, by parameter path, and the dtype each is held in.
fn base_weights(model: &CausalLm) -> Vec<(String, DType, Vec<f32>)> {
    let mut out = Vec::new();
    let mut push = |name: String, tensor: Tensor<2>| {
        let dtype = tensor.dtype();
        out.push((name, dtype, floats(tensor)));
    };
    push("embed_tokens".into(), model.model.embed_tokens.weight.val());
    for (i, layer) in model.model.layers.iter().enumerate() {
        push(format!("{i}.q_proj"), layer.self_attn.q_proj.weight.base());
        push(format!("{i}.down_proj"), layer.mlp.down_proj.weight.base());
    }
    out
}

#[test]
fn a_base_held_in_bf16_is_the_rounded_base_under_f32_adapters() {
    let device = Device::flex();
    let adapter = "qwen2-tied-lora";
    let reference = reference(adapter);
    let model = peft_model(adapter, &device);
    let half = model.clone().with_base_dtype(FloatDType::BF16).unwrap();
    assert_eq!(
        (model.base_dtype(), half.base_dtype()),
        (DType::F32, DType::BF16)
    );

    // Each weight is its f32 value rounded to the nearest bf16 (the `half` crate's rounding,
    // an independent reference); the adapters, norms and biases are untouched f32.
    for ((name, _, full), (_, dtype, rounded)) in
        base_weights(&model).iter().zip(base_weights(&half))
    {
        assert_eq!(dtype, DType::BF16, "{name}");
        let expected: Vec<f32> = full
            .iter()
            .map(|&v| half::bf16::from_f32(v).to_f32())
            .collect();
        assert_eq!(rounded, expected, "{name}");
        assert_ne!(&rounded, full, "{name}: rounding changes some values");
    }
    for ((name, a), (_, b)) in model.adapters().iter().zip(half.adapters()) {
        assert_eq!(b.a.val().dtype(), DType::F32, "{name}");
        assert_eq!(floats(b.a.val()), floats(a.a.val()), "{name}");
        assert_eq!(floats(b.b.val()), floats(a.b.val()), "{name}");
    }
    let layer = &half.model.layers[0];
    assert_eq!(layer.input_layernorm.gamma.val().dtype(), DType::F32);
    let bias = layer
        .self_attn
        .q_proj
        .bias
        .as_ref()
        .expect("qwen2 has q bias");
    assert_eq!(bias.val().dtype(), DType::F32);

    // Logits: f32 out, near the f32 model's (bf16 keeps 8 bits of mantissa: relative error
    // ~2⁻⁹ per rounding), and not equal to them — the products did run in bf16.
    for case in &reference.cases {
        let (full, rounded) = (
            logits(&model, &case.ids, &device),
            logits(&half, &case.ids, &device),
        );
        let scale = full.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = max_abs_diff(&full, &rounded);
        assert!(
            diff <= 0.02 * scale,
            "ids {:?}: {diff} against logits up to {scale}",
            case.ids
        );
        assert!(diff > 0.0, "ids {:?}: no rounding at all", case.ids);
    }

    // The adapter switched off is the bf16 base; merging widens it to f32 first.
    let ids = &reference.cases[0].ids;
    let off = half.without_adapters().unwrap();
    assert_ne!(logits(&off, ids, &device), logits(&half, ids, &device));
    let merged = half.clone().merge_adapters();
    assert_eq!(merged.base_dtype(), DType::F32);
    let diff = max_abs_diff(&logits(&merged, ids, &device), &logits(&half, ids, &device));
    let scale = logits(&half, ids, &device)
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()));
    assert!(
        diff <= 0.02 * scale,
        "merged vs bf16 adapter forward: {diff}"
    );

    // Our checkpoint keeps the base in bf16 (half the bytes) and loads back bitwise.
    let dir = tempfile::tempdir().unwrap();
    model.save(&dir.path().join("f32")).unwrap();
    half.save(&dir.path().join("bf16")).unwrap();
    let size = |name: &str| {
        std::fs::metadata(dir.path().join(name).join("model.bpk"))
            .unwrap()
            .len() as f64
    };
    let ratio = size("bf16") / size("f32");
    assert!(
        (0.45..0.55).contains(&ratio),
        "bf16 checkpoint / f32 checkpoint = {ratio}"
    );
    let again = CausalLm::load(&dir.path().join("bf16"), &device).unwrap();
    assert_eq!(again.base_dtype(), DType::BF16);
    assert_eq!(logits(&again, ids, &device), logits(&half, ids, &device));
    // A device without bf16 (ndarray) loads the same checkpoint widened to f32.
    #[cfg(feature = "ndarray")]
    {
        #[allow(deprecated)]
        let ndarray = Device::ndarray();
        let widened = CausalLm::load(&dir.path().join("bf16"), &ndarray).unwrap();
        assert_eq!(widened.base_dtype(), DType::F32);
        let diff = max_abs_diff(
            &logits(&widened, ids, &ndarray),
            &logits(&half, ids, &device),
        );
        assert!(diff <= 0.02 * scale, "bf16 checkpoint on ndarray: {diff}");
    }
}

#[test]
fn a_base_below_f32_needs_adapters_and_a_device_that_holds_it() {
    let device = Device::flex();
    let base = CausalLm::load(&fixtures().join("qwen2-tied"), &device).unwrap();
    let error = base
        .clone()
        .with_base_dtype(FloatDType::BF16)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("base_dtype") && error.contains("LoRA"),
        "{error}"
    );
    // f32 needs nothing: it is what a plain model already is.
    assert_eq!(
        base.clone()
            .with_base_dtype(FloatDType::F32)
            .unwrap()
            .base_dtype(),
        DType::F32
    );
    #[cfg(feature = "ndarray")]
    {
        #[allow(deprecated)]
        let ndarray = Device::ndarray();
        let model = peft_model("qwen2-tied-lora", &ndarray);
        let error = model
            .with_base_dtype(FloatDType::BF16)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("base_dtype") && error.contains("does not support"),
            "{error}"
        );
    }
}
