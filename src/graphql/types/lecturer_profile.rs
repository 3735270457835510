use async_graphql::{InputValueError, InputValueResult, Object, Scalar, ScalarType, Value};
use chrono::{DateTime, NaiveDate, Utc};
use entity::lecturer_profile;

/// A calendar date, `YYYY-MM-DD` (ISO 8601), without a time or a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Date> {
        match &value {
            Value::String(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom(format!("`{text}` is not a YYYY-MM-DD date"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// A person's employment as userhub records it: read by their organisation, changed by its
/// admins (`updateLecturerProfile`).
pub struct LecturerProfile(pub(crate) lecturer_profile::Model);

#[Object]
impl LecturerProfile {
    /// The university's own id for the person.
    async fn staff_id(&self) -> Option<&str> {
        self.0.staff_id.as_deref()
    }

    async fn job_title(&self) -> Option<&str> {
        self.0.job_title.as_deref()
    }

    async fn department(&self) -> Option<&str> {
        self.0.department.as_deref()
    }

    /// The contract's full-time equivalent: more than 0, at most 1.
    async fn contract_fte(&self) -> Option<f64> {
        self.0.contract_fte
    }

    async fn contract_start(&self) -> Option<Date> {
        self.0.contract_start.map(Date)
    }

    /// The last day of the contract.
    async fn contract_end(&self) -> Option<Date> {
        self.0.contract_end.map(Date)
    }

    /// Hours of teaching and other duties a year, when set for this person.
    async fn workload_target_hours(&self) -> Option<f64> {
        self.0.workload_target_hours
    }

    /// When the person's access ends: from then on a scheduled job keeps them suspended in
    /// Clerk, and `unsuspendUser` is refused until this moves on or is cleared.
    async fn access_until(&self) -> Option<DateTime<Utc>> {
        self.0.access_until
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
