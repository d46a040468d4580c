//! The built-in English sentences against transcripts as Whisper writes them,
//! and loading errors.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::{IntentError, IntentSet, SlotLists};

/// A house: entity names (and one alias) and areas.
fn house() -> SlotLists {
    let mut lists = SlotLists::new();
    lists
        .add("name", "Kitchen Lights", "light.kitchen")
        .add("name", "Bedroom Lamp", "light.bedroom_lamp")
        .add("name", "Porch Light", "light.porch")
        .add("name", "Ceiling Fan", "fan.ceiling")
        .add("name", "Kid's Room Light", "light.kids_room")
        .add("name", "Garage Door", "cover.garage_door")
        .add("name", "Living Room Blinds", "cover.living_room_blinds")
        .add("name", "Front Door", "lock.front_door")
        .add("name", "Front Door Lock", "lock.front_door")
        .add(
            "name",
            "Living Room Temperature",
            "sensor.living_room_temperature",
        )
        .add("area", "Kitchen", "kitchen")
        .add("area", "Living Room", "living_room")
        .add("area", "Bedroom", "bedroom")
        .add("area", "Kid's Room", "kids_room");
    lists
}

/// Recognizes `text` in [`house`] and compares it with `expected`: the
/// intent and its slots as `IntentMatch` displays them, or `none`.
fn check(intents: &IntentSet, text: &str, expected: &str) -> Result<(), String> {
    let found = intents.recognize(text, &house());
    let actual = found.map_or_else(|| "none".to_owned(), |found| found.to_string());
    if actual != expected {
        return Err(format!(
            "{text:?}\n    expected {expected}\n    got      {actual}"
        ));
    }
    Ok(())
}

/// Transcripts and what they mean: `text => intent slot=value…` or `=> none`.
const CASES: &str = "
# On and off, by name and by area and domain.
Turn on the kitchen lights.                                   => HassTurnOn name=light.kitchen
  TURN   on the   Kitchen Lights!!!                           => HassTurnOn name=light.kitchen
Turn the kitchen light on.                                    => HassTurnOn name=light.kitchen
Turn off my kitchen lights.                                   => HassTurnOff name=light.kitchen
Switch off the bedroom lamp.                                  => HassTurnOff name=light.bedroom_lamp
Turn on the ceiling fan                                       => HassTurnOn name=fan.ceiling
Turn off the kid's room light.                                => HassTurnOff name=light.kids_room
turn off the kids room light                                  => HassTurnOff name=light.kids_room
Turn off the lights in the kitchen.                           => HassTurnOff area=kitchen domain=light
Turn off all the lights in the living room.                   => HassTurnOff area=living_room domain=light
Turn on the living room lamps.                                => HassTurnOn area=living_room domain=light
Turn the bedroom fan off                                      => HassTurnOff area=bedroom domain=fan
Unlock the front door.                                        => HassTurnOff domain=lock name=lock.front_door
Lock the front door lock                                      => HassTurnOn domain=lock name=lock.front_door
# Brightness.
Set the kitchen light to 50%.                                 => HassLightSet brightness=50 name=light.kitchen
Set bedroom lamp brightness to fifty percent.                 => HassLightSet brightness=50 name=light.bedroom_lamp
Dim the kitchen light to 20 percent.                          => HassLightSet brightness=20 name=light.kitchen
Set the brightness of the porch light to twenty-five percent. => HassLightSet brightness=25 name=light.porch
Brighten the porch light to one hundred percent.              => HassLightSet brightness=100 name=light.porch
Set the kitchen light to 0%                                   => HassLightSet brightness=0 name=light.kitchen
Set the living room lights to a hundred percent.              => HassLightSet area=living_room brightness=100 domain=light
Dim the lights in the bedroom to 30.                          => HassLightSet area=bedroom brightness=30 domain=light
# Covers.
Open the garage door.                                         => HassOpenCover domain=cover name=cover.garage_door
Close the living room blinds.                                 => HassCloseCover domain=cover name=cover.living_room_blinds
Close the curtains in the bedroom.                            => HassCloseCover area=bedroom device_class=curtain domain=cover
# State.
Is the front door locked?                                     => HassGetState name=lock.front_door state=locked
Is the front door lock unlocked?                              => HassGetState name=lock.front_door state=unlocked
Is the kitchen light on?                                      => HassGetState name=light.kitchen state=on
Are the lights in the kitchen off?                            => HassGetState area=kitchen domain=light state=off
What's the temperature in the living room?                    => HassGetState area=living_room device_class=temperature domain=sensor
What is the living room temperature?                          => HassGetState name=sensor.living_room_temperature
# Timers.
Set a timer for 5 minutes.                                    => HassStartTimer minutes=5
Set a timer for one hour and thirty minutes.                  => HassStartTimer hours=1 minutes=30
Set a timer for 90 seconds.                                   => HassStartTimer seconds=90
Start a timer for an hour.                                    => HassStartTimer hours=1
Set a timer for half an hour.                                 => HassStartTimer minutes=30
Start a 10 minute timer.                                      => HassStartTimer minutes=10
Set a timer for twenty five minutes                           => HassStartTimer minutes=25
Set a timer for 2 minutes and 30 seconds.                     => HassStartTimer minutes=2 seconds=30
Set a pasta timer for 8 minutes.                              => HassStartTimer minutes=8 name=pasta
Start a 3 minute egg timer                                    => HassStartTimer minutes=3 name=egg
Cancel the timer.                                             => HassCancelTimer
Stop the pasta timer.                                         => HassCancelTimer name=pasta
How much time is left on the timer?                           => HassTimerStatus
How much time is left on my pizza timer?                      => HassTimerStatus name=pizza
How long left?                                                => HassTimerStatus
# The house's mode.
What mode is the house in?                                    => AthenaGetMode
Is the house in guest mode?                                   => AthenaGetMode mode=guest
# Not for the local matcher.
What's the wifi password?                                     => none
Tell me a joke.                                               => none
Turn on                                                       => none
Turn on the.                                                  => none
Turn on the dishwasher.                                       => none
Turn on the lights.                                           => none
Turn on the kitchen lights and the porch light                => none
Set the kitchen light to 150 percent.                         => none
Set the kitchen light to twenty fifty percent.                => none
Set a timer for minutes.                                      => none
Is the house in disco mode?                                   => none
                                                              => none
?!.                                                           => none
";

#[test]
fn the_english_set_loads_with_every_intent() {
    let intents = IntentSet::english().unwrap();
    let expected = [
        "HassTurnOn",
        "HassTurnOff",
        "HassLightSet",
        "HassOpenCover",
        "HassCloseCover",
        "HassGetState",
        "HassStartTimer",
        "HassCancelTimer",
        "HassTimerStatus",
        "AthenaGetMode",
    ];
    for intent in expected {
        let sentences = intents.sentences.iter().filter(|s| s.intent == intent);
        assert!(sentences.count() >= 2, "{intent} has too few sentences");
    }
}

#[test]
fn english_sentences_recognize_transcripts() {
    let intents = IntentSet::english().unwrap();
    let cases: Vec<(&str, &str)> = CASES
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| line.split_once("=>").unwrap())
        .collect();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(text, expected)| check(&intents, text.trim(), expected.trim()).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn slots_keep_the_words_heard_and_timers_their_duration() {
    let intents = IntentSet::english().unwrap();
    let found = intents
        .recognize("Turn on the kitchen light.", &house())
        .unwrap();
    assert_eq!(found.slots["name"].text, "kitchen light");
    assert_eq!(found.sentence, "(turn|switch) on <name>");
    let found = intents
        .recognize("Set a timer for one hour and thirty minutes", &house())
        .unwrap();
    assert_eq!(found.duration(), Some(Duration::from_secs(5400)));
    assert_eq!(found.slots["minutes"].text, "thirty");
    assert_eq!(found.number("hours"), Some(1));
    assert_eq!(found.text("hours"), None);
}

#[test]
fn odd_input_is_not_a_command() {
    let intents = IntentSet::english().unwrap();
    let long = "set a timer for ".repeat(500);
    let nested = format!("turn on the {}", "kitchen ".repeat(1000));
    for text in [
        long.as_str(),
        nested.as_str(),
        "''' -- %%% &",
        "ﬁ İ ß 𝔘 ✓",
        "set the kitchen light to -5%",
        "set the kitchen light to 99999999999999999999999 percent",
    ] {
        assert_eq!(intents.recognize(text, &house()), None, "{text:?}");
    }
}

#[test]
fn a_callers_list_replaces_the_builtin_one() {
    let intents = IntentSet::english().unwrap();
    let mut lists = house();
    lists.add("mode", "disco", "disco");
    let found = intents
        .recognize("is the house in disco mode", &lists)
        .unwrap();
    assert_eq!(found.to_string(), "AthenaGetMode mode=disco");
    assert!(
        intents
            .recognize("is the house in guest mode", &lists)
            .is_none()
    );
}

#[test]
fn loading_errors() {
    let load = |yaml: &str| IntentSet::from_yaml(yaml).unwrap_err();
    let sentence = |text: &str| format!("intents: [{{ intent: X, sentences: [\"{text}\"] }}]");
    assert!(matches!(load("intents: 5"), IntentError::Yaml(_)));
    assert!(matches!(load(&sentence("turn (on")), IntentError::Template(e) if e.position == 5));
    assert!(
        matches!(load(&sentence("<nowhere>")), IntentError::UnknownRule { rule, .. } if rule == "nowhere")
    );
    let recursive = format!(
        "{}\nexpansion_rules: {{ a: \"x <b>\", b: \"[<a>]\" }}",
        sentence("<a>")
    );
    assert!(matches!(load(&recursive), IntentError::RecursiveRule(_)));
    let list = |def: &str| format!("lists: {{ n: {def} }}");
    assert!(matches!(
        load(&list("{ range: { from: 5, to: 1 } }")),
        IntentError::InvalidList { .. }
    ));
    assert!(matches!(
        load(&list("{ range: { from: 1, to: 5, step: 0 } }")),
        IntentError::InvalidList { .. }
    ));
    assert!(matches!(
        load(&list("{ wildcard: true, values: [a] }")),
        IntentError::InvalidList { .. }
    ));
    assert!(matches!(
        load(&list("{ values: [\"?\"] }")),
        IntentError::InvalidList { .. }
    ));
    assert!(matches!(load(&list("{}")), IntentError::InvalidList { .. }));
}

#[test]
fn ranges_keep_to_their_steps() {
    let yaml = "intents: [{ intent: Volume, sentences: [\"volume {level}\"] }]\n\
                lists: { level: { range: { from: 0, to: 100, step: 10 } } }";
    let intents = IntentSet::from_yaml(yaml).unwrap();
    let level = |text| {
        intents
            .recognize(text, &SlotLists::new())
            .and_then(|m| m.number("level"))
    };
    assert_eq!(level("volume thirty"), Some(30));
    assert_eq!(level("volume 35"), None);
}
