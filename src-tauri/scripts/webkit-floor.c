/* The platform's floor for bench.sh: a bare GTK window with one WebKitGTK web view showing one
 * line of HTML, started with the same WebKit environment as the app (WEBVIEW_ENV in src/lib.rs).
 * No Tauri, no UI, no node: whatever this costs, any WebKitGTK app pays before its own code.
 *   cc webkit-floor.c $(pkg-config --cflags --libs webkit2gtk-4.1) -o webkit-floor
 * `webkit-floor --lean` also applies every WebKit setting that could lower memory (cache model
 * document-viewer, memory-pressure limits of 20 MB for the web and network processes, no page
 * cache, WebGL, media or Web Audio), to show what settings can and cannot buy.
 */
#include <stdlib.h>
#include <string.h>
#include <gtk/gtk.h>
#include <webkit2/webkit2.h>

int main(int argc, char **argv) {
  /* as the app's main: set unless the user has set them (0 = do not overwrite) */
  setenv("WEBKIT_DISABLE_COMPOSITING_MODE", "1", 0);
  setenv("JSC_useJIT", "false", 0);
  gtk_init(&argc, &argv);
  GtkWidget *window = gtk_window_new(GTK_WINDOW_TOPLEVEL);
  gtk_window_set_default_size(GTK_WINDOW(window), 1100, 720);
  GtkWidget *view;
  if (argc > 1 && strcmp(argv[1], "--lean") == 0) {
    WebKitMemoryPressureSettings *limits = webkit_memory_pressure_settings_new();
    webkit_memory_pressure_settings_set_memory_limit(limits, 20);
    webkit_memory_pressure_settings_set_poll_interval(limits, 1.0);
    webkit_website_data_manager_set_memory_pressure_settings(limits);
    WebKitWebContext *context =
        g_object_new(WEBKIT_TYPE_WEB_CONTEXT, "memory-pressure-settings", limits, NULL);
    webkit_web_context_set_cache_model(context, WEBKIT_CACHE_MODEL_DOCUMENT_VIEWER);
    view = webkit_web_view_new_with_context(context);
    WebKitSettings *settings = webkit_web_view_get_settings(WEBKIT_WEB_VIEW(view));
    webkit_settings_set_enable_page_cache(settings, FALSE);
    webkit_settings_set_enable_webgl(settings, FALSE);
    webkit_settings_set_enable_media(settings, FALSE);
    webkit_settings_set_enable_webaudio(settings, FALSE);
  } else {
    view = webkit_web_view_new();
  }
  gtk_container_add(GTK_CONTAINER(window), view);
  webkit_web_view_load_html(WEBKIT_WEB_VIEW(view), "<!doctype html><p>Hello</p>", NULL);
  g_signal_connect(window, "destroy", G_CALLBACK(gtk_main_quit), NULL);
  gtk_widget_show_all(window);
  gtk_main();
  return 0;
}
