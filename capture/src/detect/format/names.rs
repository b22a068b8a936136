//! Names of model files, as archive members and HTTP filenames show them.

/// Whether an archive member's (or URL's) file name looks like a model file:
/// `*.safetensors`, `*.gguf`, `pytorch_model*.bin`, `*.pt`/`*.pth`/`*.ckpt`,
/// `*.onnx`, `*.tflite`, `*.h5`/`*.keras`, `consolidated.*.pth`,
/// `flax_model*.msgpack`, TF checkpoint
/// `.index`/`.data-NNNNN-of-NNNNN`, SavedModel `saved_model.pb` and
/// `variables.index`, `*.npz`, PaddlePaddle `*.pdparams`, Core ML
/// `*.mlmodel` and an `.mlpackage`'s `weight.bin`, `*.nemo`, `*.llamafile`,
/// `*.joblib`.
pub fn is_model_member(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
    const EXT: [&str; 16] = [
        ".safetensors",
        ".gguf",
        ".pt",
        ".pth",
        ".ckpt",
        ".onnx",
        ".tflite",
        ".h5",
        ".keras",
        ".npz",
        ".ggml",
        ".pdparams",
        ".mlmodel",
        ".nemo",
        ".llamafile",
        ".joblib",
    ];
    EXT.iter().any(|e| base.ends_with(e))
        || (base.starts_with("pytorch_model") && base.ends_with(".bin"))
        || (base.starts_with("flax_model") && base.ends_with(".msgpack"))
        || (base.starts_with("model") && base.ends_with(".bin"))
        || is_tf_data_shard(&base)
        || (base.ends_with(".index") && base.contains("ckpt"))
        || base == "variables.index"
        || base == "saved_model.pb"
        || (base == "weight.bin" && name.contains(".mlpackage/"))
}

/// `….data-00000-of-00001`: a TensorFlow checkpoint data shard.
pub fn is_tf_data_shard(name: &str) -> bool {
    let Some((_, tail)) = name.rsplit_once(".data-") else {
        return false;
    };
    let b = tail.as_bytes();
    b.len() == 14
        && b[..5].iter().all(u8::is_ascii_digit)
        && &b[5..9] == b"-of-"
        && b[9..].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names() {
        assert!(is_model_member("llama/model-00001-of-00004.safetensors"));
        assert!(is_model_member("pytorch_model-00002-of-00002.bin"));
        assert!(is_model_member("x/model.ckpt.data-00000-of-00001"));
        assert!(is_model_member("Llama-3-8B.Q4_K_M.gguf"));
        assert!(!is_model_member("config.json"));
        assert!(!is_model_member("photos/cat.jpg"));
        assert!(!is_model_member("README.md"));
    }
}
