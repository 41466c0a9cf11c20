//! Training and evaluation primitives shared by every stage: the minibatch loop ([`train`]),
//! features and accuracy ([`eval`]), and a linear head on cached features ([`head`]).

mod eval;
mod head;
mod train;

pub use eval::*;
pub use head::*;
pub use train::*;

#[cfg(test)]
mod tests {
    use super::eval::{eval_batches, features_in};
    use super::train::{Examples, train};
    use super::*;
    use crate::family::Family;
    use burn::module::AutodiffModule;
    use burn::nn::Linear;
    use burn::tensor::Tensor;
    use burn::tensor::TensorData;
    use indicatif::ProgressBar;
    use loramix_backend::{Inference, Train};
    use loramix_data::TextItem;
    use loramix_models::{Classifier, LinearProbe};

    /// Two classes on either side of the first feature's zero.
    fn separable(n: usize) -> (Tensor<Inference, 2>, Vec<TextItem>) {
        let values: Vec<f32> = (0..n)
            .flat_map(|i| {
                let side = if i % 2 == 0 { 1.0 } else { -1.0 };
                [side * (1.0 + i as f32 / n as f32), 0.5]
            })
            .collect();
        let items = (0..n)
            .map(|i| TextItem {
                text: String::new(),
                label: i % 2,
            })
            .collect();
        let device = loramix_backend::device();
        (
            Tensor::from_data(TensorData::new(values, [n, 2]), &device),
            items,
        )
    }

    #[test]
    fn same_shape_batches_are_full_and_keep_every_item_once_in_order() {
        let items: Vec<usize> = (0..7).collect();
        let shapes = |same_shape| {
            eval_batches(&items, 3, same_shape)
                .map(|b| (b.items.to_vec(), b.real))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shapes(false),
            [(vec![0, 1, 2], 3), (vec![3, 4, 5], 3), (vec![6], 1)]
        );
        assert_eq!(
            shapes(true),
            [(vec![0, 1, 2], 3), (vec![3, 4, 5], 3), (vec![6, 6, 6], 1)]
        );
        // A set smaller than one batch fills it too.
        let few = eval_batches(&items[..2], 5, true)
            .map(|b| (b.items.to_vec(), b.real))
            .collect::<Vec<_>>();
        assert_eq!(few, [(vec![0, 1, 1, 1, 1], 2)]);
    }

    #[test]
    fn padded_batches_give_the_features_of_the_items_alone() {
        use crate::family::Vision;
        use loramix_data::{ImageItem, ImageShape};
        use loramix_models::VitConfig;
        let config = VitConfig::new()
            .with_image_size(8)
            .with_dim(16)
            .with_heads(2)
            .with_depth(1)
            .with_mlp_dim(32);
        let family = Vision::own(config, ImageShape::square(1, 8));
        let device = loramix_backend::device();
        let model = family.init(3, &device).valid();
        let items: Vec<ImageItem> = (0..5)
            .map(|i| ImageItem {
                pixels: (0..64)
                    .map(|p| ((p * 7 + i * 13) % 17) as f32 / 17.0)
                    .collect(),
                label: i % 3,
            })
            .collect();
        let alone = Tensor::cat(
            items
                .iter()
                .map(|item| model.features(family.input(std::slice::from_ref(item), &device)))
                .collect(),
            0,
        );
        let padded = features_in(&family, &model, eval_batches(&items, 4, true), 1);
        assert_eq!(padded.dims(), alone.dims());
        padded
            .into_data()
            .assert_approx_eq::<f32>(&alone.into_data(), burn::tensor::Tolerance::absolute(1e-5));
    }

    /// Tests that seed burn's one generator take turns.
    fn turn() -> std::sync::MutexGuard<'static, ()> {
        static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
        TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A head fitted from burn's generator seeded with 7.
    fn seeded_head(lr: f64, head_lr: Option<f64>) -> Linear<Inference> {
        let (x, items) = separable(24);
        loramix_lora::init::seed::<Train>(&loramix_backend::device(), 7);
        let schedule = Schedule {
            steps: 40,
            batch: 8,
            lr,
            head_lr,
            parts: 2,
        };
        fit_head(x, &items, 2, schedule, 3).unwrap()
    }

    #[test]
    fn the_probe_learns_at_the_head_rate_and_separates() {
        let _turn = turn();
        let weights = |head: &Linear<Inference>| head.weight.val().into_data();
        let at_head_rate = seeded_head(1e-9, Some(0.1));
        let at_lr = seeded_head(0.1, None);
        assert_eq!(
            weights(&at_head_rate),
            weights(&at_lr),
            "a probe is all head: head_lr must be its rate"
        );
        let barely = seeded_head(1e-9, None);
        assert_ne!(weights(&barely), weights(&at_lr));
        let (x, items) = separable(24);
        assert_eq!(head_accuracy(&at_lr, x, &items), 1.0);
    }

    /// 100 steps of batch 8 at rate 0.5: the early-stopping tests' schedule.
    fn hundred_steps() -> Schedule {
        Schedule {
            steps: 100,
            batch: 8,
            lr: 0.5,
            head_lr: None,
            parts: 1,
        }
    }

    #[test]
    fn early_stopping_breaks_accuracy_ties_by_validation_loss() {
        let _turn = turn();
        let (x, items) = separable(24);
        let validation = HeadValidation {
            features: x.clone(),
            items: &items,
            checks: 10,
        };
        loramix_lora::init::seed::<Train>(&loramix_backend::device(), 7);
        let schedule = hundred_steps();
        let best = fit_head_stopped(x.clone(), &items, 2, schedule, 3, Some(&validation)).unwrap();
        // Checks every 10 steps. Separable data is classified perfectly long before step 100,
        // but its loss keeps falling, so the last check wins the accuracy tie.
        let score = best.score.unwrap();
        assert_eq!(score.accuracy, 1.0);
        assert_eq!(best.steps, 100);
        assert_eq!(head_score(&best.model, x, &items), score);
    }

    #[test]
    fn training_to_convergence_stops_after_patience_checks_without_improvement() {
        let _turn = turn();
        let (x, items) = separable(24);
        let device = loramix_backend::device();
        let schedule = hundred_steps();
        let run = |scripted: &[(f64, f64)], patience: Option<usize>| {
            let calls = std::cell::Cell::new(0);
            let score = |_: &LinearProbe<Train>| {
                let (accuracy, loss) = scripted[calls.get().min(scripted.len() - 1)];
                calls.set(calls.get() + 1);
                Some(ValScore { accuracy, loss })
            };
            let stop = EarlyStop {
                every: 10,
                score: &score,
                patience,
            };
            let examples = Examples {
                input: &Tensor::<Train, 2>::from_inner(x.clone()),
                targets: &targets::<Train, TextItem>(&items, &device),
            };
            loramix_lora::init::seed::<Train>(&device, 7);
            let probe = LinearProbe::<Train>::new(2, 2, &device);
            let hidden = ProgressBar::hidden();
            let stopped = train(probe, examples, schedule, 3, &hidden, Some(&stop)).unwrap();
            (stopped, calls.get())
        };
        // Best at the second check (step 20); the third ties its accuracy at a higher loss and
        // the fourth is worse: two checks without improvement end the run there.
        let scripted = [(0.5, 1.0), (0.7, 0.8), (0.7, 0.9), (0.6, 0.5), (0.9, 0.1)];
        let (stopped, checks) = run(&scripted, Some(2));
        assert_eq!((stopped.steps, stopped.converged, checks), (20, true, 4));
        assert_eq!(stopped.score.unwrap().accuracy, 0.7);
        // The model kept is the one of step 20: as a run of 20 steps leaves it.
        let kept = stopped.model.head.weight.val().into_data();
        let short = Schedule {
            steps: 20,
            ..schedule
        };
        loramix_lora::init::seed::<Train>(&device, 7);
        let probe = LinearProbe::<Train>::new(2, 2, &device);
        let examples = Examples {
            input: &Tensor::<Train, 2>::from_inner(x.clone()),
            targets: &targets::<Train, TextItem>(&items, &device),
        };
        let plain = train(probe, examples, short, 3, &ProgressBar::hidden(), None).unwrap();
        assert_eq!(kept, plain.model.head.weight.val().into_data());
        // Without patience every step runs and the best check is kept, not marked converged.
        let (stopped, checks) = run(&scripted, None);
        assert_eq!((stopped.steps, stopped.converged, checks), (50, false, 10));
    }

    #[test]
    fn a_score_beats_another_by_accuracy_then_loss_and_equal_ones_keep_the_first() {
        let score = |accuracy, loss| ValScore { accuracy, loss };
        assert!(score(0.6, 2.0).beats(&score(0.5, 0.1)));
        assert!(score(0.5, 0.1).beats(&score(0.5, 0.2)));
        assert!(!score(0.5, 0.2).beats(&score(0.5, 0.2)));
        assert!(!score(0.4, 0.0).beats(&score(0.5, 9.0)));
        assert!(ValScore::improves(Some(score(0.0, 9.0)), None));
        assert!(!ValScore::improves(None, Some(score(0.0, 9.0))));
        assert!(!ValScore::improves(None, None));
    }
}
