//! The transcript as agents read it in a staff thread or channel: one line
//! per message with time (desk time zone), who wrote it, and the text with
//! phone numbers masked (every agent can read the thread, not only the one
//! who claimed it). Shared by every channel.

use chrono_tz::Tz;

use crate::conversation::store::{Direction, TranscriptEntry};
use crate::text::mask_phone_numbers;

/// `title` followed by one line per transcript entry.
pub fn for_agents(title: &str, lines: &[TranscriptEntry], time_zone: Tz) -> String {
    let mut text = title.to_string();
    for line in lines {
        let who = match line.direction {
            Direction::Person => "👤".to_string(),
            Direction::Bot => "🤖".to_string(),
            Direction::Agent => format!("🧑‍💼 {}", line.author.clone().unwrap_or_default()),
            Direction::System => "ℹ️".to_string(),
        };
        let at = line.at.with_timezone(&time_zone).format("%m/%d %H:%M");
        text.push_str(&format!(
            "\n[{at}] {who}: {}",
            mask_phone_numbers(&line.text)
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn lines_show_local_time_author_and_masked_numbers() {
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 25, 5, 0, 0)
            .single()
            .expect("time");
        let lines = vec![
            TranscriptEntry {
                at,
                direction: Direction::Person,
                author: None,
                message_id: None,
                text: "090-1234-5678です".into(),
            },
            TranscriptEntry {
                at,
                direction: Direction::Agent,
                author: Some("佐藤".into()),
                message_id: None,
                text: "確認します".into(),
            },
        ];
        let text = for_agents("【記録】", &lines, chrono_tz::Asia::Tokyo);
        assert_eq!(
            text,
            "【記録】\n[11/25 14:00] 👤: 090-****-5678です\n[11/25 14:00] 🧑‍💼 佐藤: 確認します"
        );
    }
}
