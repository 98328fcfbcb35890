/* The platform's floor for bench.sh: a bare GTK window with one WebKitGTK web view showing one
 * line of HTML, started with the same WebKit environment as the app (WEBVIEW_ENV in src/lib.rs).
 * No Tauri, no UI, no node: whatever this costs, any WebKitGTK app pays before its own code.
 *   cc webkit-floor.c $(pkg-config --cflags --libs webkit2gtk-4.1) -o webkit-floor
 */
#include <stdlib.h>
#include <gtk/gtk.h>
#include <webkit2/webkit2.h>

int main(int argc, char **argv) {
  /* as the app's main: set unless the user has set them (0 = do not overwrite) */
  setenv("WEBKIT_DISABLE_COMPOSITING_MODE", "1", 0);
  setenv("JSC_useJIT", "false", 0);
  gtk_init(&argc, &argv);
  GtkWidget *window = gtk_window_new(GTK_WINDOW_TOPLEVEL);
  gtk_window_set_default_size(GTK_WINDOW(window), 1100, 720);
  GtkWidget *view = webkit_web_view_new();
  gtk_container_add(GTK_CONTAINER(window), view);
  webkit_web_view_load_html(WEBKIT_WEB_VIEW(view), "<!doctype html><p>Hello</p>", NULL);
  g_signal_connect(window, "destroy", G_CALLBACK(gtk_main_quit), NULL);
  gtk_widget_show_all(window);
  gtk_main();
  return 0;
}
