//! The accessors every encoder model shares, written once: a model whose transformer body is
//! its field `encoder` and whose classifier is its field `head`. Each macro expands inside the
//! model's impl block of the trait it names, next to what is the model's own (features,
//! tokens, what `trainable` freezes, the fingerprint).

/// [`Learner`](crate::Learner)'s `logits` (the head on the features) and `head`.
macro_rules! learner_with_head_field {
    () => {
        fn logits(&self, input: Self::Input) -> Tensor<B, 2> {
            self.head.forward(self.features(input))
        }

        fn head(&self) -> &Linear<B> {
            &self.head
        }
    };
}

/// [`Classifier`](crate::Classifier)'s `encoder`, `map_encoder` and `with_new_head`.
macro_rules! classifier_with_encoder_field {
    () => {
        fn encoder(&self) -> &Encoder<B> {
            &self.encoder
        }

        fn map_encoder(self, f: impl FnOnce(Encoder<B>) -> Encoder<B>) -> Self {
            Self {
                encoder: f(self.encoder),
                ..self
            }
        }

        fn with_new_head(self, head: Linear<B>) -> Self {
            Self { head, ..self }
        }
    };
}

/// `AdapterHost`'s layer lists: the encoder's adaptable linears.
macro_rules! adapter_host_with_encoder_field {
    () => {
        fn adaptable_layers(&self) -> Vec<(String, &AdaptedLinear<B>)> {
            self.encoder.layers()
        }

        fn adaptable_layers_mut(&mut self) -> Vec<(String, &mut AdaptedLinear<B>)> {
            self.encoder.layers_mut()
        }
    };
}

pub(crate) use {
    adapter_host_with_encoder_field, classifier_with_encoder_field, learner_with_head_field,
};
