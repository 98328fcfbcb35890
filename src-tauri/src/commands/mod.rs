//! The commands the dashboard invokes (see `ui/src/bridge.ts`). Each is a few lines over
//! [`AppState`]; they are `async` so Tauri runs them off the main thread.

use tauri::State;

use crate::error::AppError;
use crate::model::{
    ActivityPage, ActivityQuery, ExportResult, MAX_ACTIVITY_PAGE, Settings, Stats, Status,
};
use crate::state::AppState;

#[tauri::command]
pub async fn status(state: State<'_, AppState>) -> Result<Status, AppError> {
    Ok(state.status())
}

#[tauri::command]
pub async fn stats(state: State<'_, AppState>) -> Result<Stats, AppError> {
    state.node().stats()
}

#[tauri::command]
pub async fn pause(state: State<'_, AppState>) -> Result<Status, AppError> {
    state.pause()
}

#[tauri::command]
pub async fn pause_for(state: State<'_, AppState>, minutes: u32) -> Result<Status, AppError> {
    state.pause_for_minutes(minutes)
}

#[tauri::command]
pub async fn resume(state: State<'_, AppState>) -> Result<Status, AppError> {
    state.resume()
}

#[tauri::command]
pub async fn activity(
    state: State<'_, AppState>,
    query: ActivityQuery,
) -> Result<ActivityPage, AppError> {
    if query.limit == 0 || query.limit > MAX_ACTIVITY_PAGE {
        return Err(AppError::InvalidArgument(format!(
            "limit must be between 1 and {MAX_ACTIVITY_PAGE}"
        )));
    }
    state.node().activity(&query)
}

#[tauri::command]
pub async fn export_activity(
    state: State<'_, AppState>,
    query: ActivityQuery,
) -> Result<ExportResult, AppError> {
    state.export_activity(&query)
}

#[tauri::command]
pub async fn settings(state: State<'_, AppState>) -> Result<Settings, AppError> {
    state.settings()
}

#[tauri::command]
pub async fn update_settings(
    state: State<'_, AppState>,
    settings: Settings,
) -> Result<Settings, AppError> {
    state.update_settings(settings)
}

#[tauri::command]
pub async fn complete_onboarding(state: State<'_, AppState>) -> Result<Status, AppError> {
    state.complete_onboarding()
}

#[tauri::command]
pub async fn export_key(state: State<'_, AppState>) -> Result<String, AppError> {
    state.node().export_key()
}
